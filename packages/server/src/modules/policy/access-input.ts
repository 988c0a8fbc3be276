import type { Manifest } from '../catalog/manifest-schema.ts';

/**
 * The input of `data.microapp.access` (who may use an app), built in one place for every caller: the
 * gateway on each request, an access check asked through the API, and a request for access.
 */
export function accessInput(
  user: { email: string; department: string | null; roles: readonly string[] },
  app: { name: string; owner: string; department: string | null; tier: string; manifest: Manifest },
) {
  return {
    user: { email: user.email, department: user.department, roles: [...user.roles] },
    app: {
      name: app.name,
      owner: app.owner,
      department: app.department,
      tier: app.tier,
      dataClasses: app.manifest.dataClasses,
      audience: app.manifest.audience ?? {},
    },
  };
}
