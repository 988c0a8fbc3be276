import { AppError, conflict } from '../../errors.ts';
import type { CatalogService } from '../catalog/catalog-service.ts';
import type { BuildRequest } from './build-types.ts';
import { formFieldProblems } from './form-fields.ts';

type App = Awaited<ReturnType<CatalogService['get']>>;

/**
 * Refuses a build the app cannot have: before its approval, from a template it was not made from, or with
 * form fields that are not a form's or not valid. Returns the app's template, if any.
 */
export function refuseUnbuildable(app: App, name: string, input: BuildRequest) {
  if (app.state !== 'approved')
    throw conflict(
      `${name} is ${app.state.replace('_', ' ')}; a build starts once it is approved (\`microapp apps show ${name}\` says who is missing)`,
    );
  const template = app.manifest.template;
  if (input.kind === 'template') {
    if (!template)
      throw conflict(
        `${name} was not created from a template: build it from its folder with \`microapp build\` or \`microapp ci\``,
      );
    if (input.fields && template.name !== 'form')
      throw new AppError(
        'bad_request',
        `form fields are for apps made from the form template; ${name} uses ${template.name}`,
      );
    const problems = input.fields ? formFieldProblems(input.fields) : [];
    if (problems.length)
      throw new AppError(
        'validation_failed',
        problems.join('; '),
        problems.map((message) => ({ path: '/fields', message })),
      );
  }
  return template;
}
