import { type Static, Type } from '@sinclair/typebox';

/** The kinds of answer the form template (1.2.0 and later) checks; a question without a type is text. */
export const formFieldTypes = ['text', 'date', 'amount', 'choice', 'email'] as const;

/** One question of a form app, as the console's form builder edits it and the form template reads it. */
export const FormField = Type.Object(
  {
    id: Type.String({
      pattern: '^[a-z][a-z0-9_]{0,39}$',
      description: 'lower-case letters, digits and underscores; the CSV column',
    }),
    label: Type.String({ minLength: 1, maxLength: 200 }),
    required: Type.Boolean(),
    max: Type.Integer({ minimum: 1, maximum: 10000 }),
    type: Type.Optional(
      Type.Union(
        formFieldTypes.map((t) => Type.Literal(t)),
        {
          description:
            'the kind of answer: free text (the default), a date, an amount of money, one of the choices, an e-mail address',
        },
      ),
    ),
    choices: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 100 }), {
        minItems: 2,
        maxItems: 50,
        description: 'for a choice: what people choose from',
      }),
    ),
  },
  { additionalProperties: false },
);
export type FormField = Static<typeof FormField>;

export const FormFields = Type.Array(FormField, { minItems: 1, maxItems: 50 });

/** Problems the schema cannot see: ids must be unique and must not take the export's own columns. */
export function formFieldProblems(fields: FormField[]): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const f of fields) {
    if (seen.has(f.id)) problems.push(`the field id "${f.id}" is used twice; each question needs its own`);
    if (f.id === 'by' || f.id === 'at')
      problems.push(`the field id "${f.id}" is taken by the export (who answered, and when); choose another`);
    if (!f.label.trim()) problems.push(`the field "${f.id}" needs a label`);
    if (f.type === 'choice' && !f.choices)
      problems.push(`the question "${f.label}" is a choice: list at least two choices`);
    if (f.type !== 'choice' && f.choices)
      problems.push(`the question "${f.label}" has choices but is not a choice; make it one, or remove them`);
    if (f.choices && new Set(f.choices.map((c) => c.trim())).size !== f.choices.length)
      problems.push(`the question "${f.label}" lists a choice twice`);
    if (f.choices?.some((c) => !c.trim())) problems.push(`the question "${f.label}" has an empty choice`);
    seen.add(f.id);
  }
  return problems;
}

/** Whether questions need a form template that reads typed answers (1.2.0 and later). */
export const usesTypes = (fields: FormField[]) => fields.some((f) => (f.type ?? 'text') !== 'text');

/**
 * Whether a form app's code reads typed questions: the template's `src/app.js` from 1.2.0 exports its
 * `fieldTypes`. Code from an earlier template would take every answer as text, whatever form.json says.
 */
export const readsTypes = (appJs: string | null) => appJs !== null && /export const fieldTypes\b/.test(appJs);
