import { type Static, Type } from '@sinclair/typebox';

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
    seen.add(f.id);
  }
  return problems;
}
