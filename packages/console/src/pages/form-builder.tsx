import type { FormField } from '../contracts.ts';

/** A question with a key that stays with it while it is edited and moved. */
export type Row = { key: number; field: FormField };
let nextKey = 1;
export const rowsOf = (fields: FormField[]): Row[] => fields.map((field) => ({ key: nextKey++, field }));

type Kind = NonNullable<FormField['type']>;

/** A question as it is sent: choices trimmed, the empty lines of their text box left out. */
export const finished = (f: FormField): FormField =>
  f.choices ? { ...f, choices: f.choices.map((c) => c.trim()).filter(Boolean) } : f;

/** The kinds of answer, in the words of someone writing a form; the form template checks each. */
const kinds: { kind: Kind; words: string; hint: string }[] = [
  { kind: 'text', words: 'Text', hint: 'anything, up to the length you set' },
  { kind: 'date', words: 'A date', hint: 'chosen from a calendar' },
  { kind: 'amount', words: 'An amount of money', hint: 'a number with up to two decimals, like 1250.50' },
  { kind: 'choice', words: 'One of a list', hint: 'people pick one of the choices you list' },
  { kind: 'email', words: 'An e-mail address', hint: 'checked to look like one' },
];

const slug = (label: string, taken: Set<string>) => {
  const base =
    label
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '_')
      .replace(/^_+|_+$/g, '')
      .replace(/^([^a-z])/, 'q_$1')
      .slice(0, 36) || 'question';
  let id = ['by', 'at'].includes(base) ? `${base}_1` : base;
  for (let i = 2; taken.has(id); i++) id = `${base}_${i}`;
  return id;
};

/** A question changed to another kind: choices come and go with "one of a list". */
function withKind(f: FormField, kind: Kind): FormField {
  const { choices, type: _, ...rest } = f;
  if (kind === 'text') return rest;
  if (kind === 'choice')
    return { ...rest, type: kind, choices: choices ?? ['First choice', 'Second choice'] };
  return { ...rest, type: kind };
}

/**
 * The form's questions: label, kind of answer, required and length, in order, with a preview of the form
 * as people will see it. Ids follow the labels and stay unique. `typed` is false when the app's code
 * comes from a template that takes every answer as text: then the builder offers text only, and says why.
 */
export function FormBuilder(props: {
  fields: Row[];
  onChange: (f: Row[]) => void;
  disabled: boolean;
  typed: boolean;
}) {
  const { fields: rows, onChange, disabled, typed } = props;
  const set = (i: number, field: FormField) => {
    const next = rows.map((r, j) => (j === i ? { ...r, field } : r));
    if (field.label !== rows[i]!.field.label) {
      const taken = new Set(next.filter((_, j) => j !== i).map((r) => r.field.id));
      next[i] = { ...next[i]!, field: { ...field, id: slug(field.label, taken) } };
    }
    onChange(next);
  };
  const move = (i: number, by: number) => {
    const next = [...rows];
    const [r] = next.splice(i, 1);
    next.splice(i + by, 0, r!);
    onChange(next);
  };
  return (
    <>
      <fieldset className="builder" disabled={disabled}>
        <legend>The form's questions</legend>
        {typed ? null : (
          <p className="hint">
            This app's code comes from an older form template, which takes every answer as text. Typed
            questions (dates, amounts, lists, e-mail addresses) need its code brought up to date by a
            developer.
          </p>
        )}
        <ol>
          {rows.map(({ key, field: f }, i) => {
            const kind = f.type ?? 'text';
            return (
              <li key={key} className="builder-row">
                <div className="field grow">
                  <label htmlFor={`q-${key}`}>Question {i + 1}</label>
                  <input
                    id={`q-${key}`}
                    value={f.label}
                    maxLength={200}
                    onChange={(e) => set(i, { ...f, label: e.target.value })}
                  />
                </div>
                {typed ? (
                  <div className="field">
                    <label htmlFor={`kind-${key}`}>Answer</label>
                    <select
                      id={`kind-${key}`}
                      value={kind}
                      aria-describedby={`kind-hint-${key}`}
                      onChange={(e) => set(i, withKind(f, e.target.value as Kind))}
                    >
                      {kinds.map((k) => (
                        <option key={k.kind} value={k.kind}>
                          {k.words}
                        </option>
                      ))}
                    </select>
                    <span id={`kind-hint-${key}`} className="hint">
                      {kinds.find((k) => k.kind === kind)?.hint}
                    </span>
                  </div>
                ) : null}
                {kind === 'text' ? (
                  <div className="field">
                    <label htmlFor={`max-${key}`}>Longest answer</label>
                    <input
                      id={`max-${key}`}
                      type="number"
                      min={1}
                      max={10000}
                      value={f.max}
                      onChange={(e) =>
                        set(i, { ...f, max: Math.max(1, Math.min(10000, Number(e.target.value) || 1)) })
                      }
                    />
                  </div>
                ) : null}
                {kind === 'choice' ? (
                  <div className="field grow">
                    <label htmlFor={`choices-${key}`}>Choices, one per line</label>
                    <textarea
                      id={`choices-${key}`}
                      rows={3}
                      value={(f.choices ?? []).join('\n')}
                      onChange={(e) => set(i, { ...f, choices: e.target.value.split('\n').slice(0, 50) })}
                    />
                  </div>
                ) : null}
                <label className="check">
                  <input
                    type="checkbox"
                    checked={f.required}
                    onChange={(e) => set(i, { ...f, required: e.target.checked })}
                  />{' '}
                  Required
                </label>
                <div className="row-actions">
                  <button
                    type="button"
                    onClick={() => move(i, -1)}
                    disabled={i === 0}
                    aria-label={`Move question ${i + 1} up`}
                  >
                    ↑
                  </button>
                  <button
                    type="button"
                    onClick={() => move(i, 1)}
                    disabled={i === rows.length - 1}
                    aria-label={`Move question ${i + 1} down`}
                  >
                    ↓
                  </button>
                  <button
                    type="button"
                    onClick={() => onChange(rows.filter((_, j) => j !== i))}
                    disabled={rows.length === 1}
                    aria-label={`Remove question ${i + 1}`}
                  >
                    Remove
                  </button>
                </div>
              </li>
            );
          })}
        </ol>
        <button
          type="button"
          disabled={rows.length >= 50}
          onClick={() =>
            onChange([
              ...rows,
              ...rowsOf([
                {
                  id: slug('New question', new Set(rows.map((r) => r.field.id))),
                  label: 'New question',
                  // A question asked is usually one that must be answered; untick it for an optional one.
                  required: true,
                  max: 500,
                },
              ]),
            ])
          }
        >
          Add a question
        </button>
      </fieldset>
      <FormPreview rows={rows} />
    </>
  );
}

/** The form as the people it is for will see it, drawn from the questions as they are being written. */
function FormPreview({ rows }: { rows: Row[] }) {
  return (
    <section className="form-preview" aria-labelledby="form-preview-heading">
      <h3 id="form-preview-heading">Preview: what people will see</h3>
      <form onSubmit={(e) => e.preventDefault()} aria-label="Preview of the form">
        {rows.map(({ key, field: f }) => {
          const id = `preview-${key}`;
          const label = (
            <label htmlFor={id}>
              {f.label || 'A question without words'}
              {f.required ? null : <span className="muted"> (optional)</span>}
            </label>
          );
          const kind = f.type ?? 'text';
          return (
            <div className="field" key={key}>
              {label}
              {kind === 'date' ? (
                <input id={id} type="date" />
              ) : kind === 'amount' ? (
                <input id={id} inputMode="decimal" placeholder="1250.50" />
              ) : kind === 'email' ? (
                <input id={id} type="email" placeholder="name@example.com" />
              ) : kind === 'choice' ? (
                <select id={id} defaultValue="">
                  <option value="">Choose…</option>
                  {(f.choices ?? [])
                    .filter((c) => c.trim())
                    .map((c) => (
                      <option key={c}>{c}</option>
                    ))}
                </select>
              ) : (
                <textarea id={id} rows={2} maxLength={f.max} />
              )}
            </div>
          );
        })}
        <button type="submit" disabled>
          Send
        </button>
      </form>
    </section>
  );
}
