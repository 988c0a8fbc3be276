import { useState } from 'react';
import { api } from '../api.ts';
import type { LifecycleView } from '../contracts.ts';
import { hasRole, useSession } from '../session.tsx';
import { Outcome, Section, When } from '../ui.tsx';
import { useAction } from '../use-action.ts';
import { useApi } from '../use-api.ts';

type SecretItem = {
  name: string;
  set: boolean;
  version: number | null;
  updatedBy: string | null;
  updatedAt: string | null;
};

/** The owner's controls: secrets as write-only fields, renew, roll back, decommission and restore. */
export function ManageSection({ name, onChanged }: { name: string; onChanged: () => void }) {
  const session = useSession();
  const secrets = useApi<{ items: SecretItem[] }>(`/api/v1/apps/${name}/secrets`);
  const lifecycle = useApi<LifecycleView>(`/api/v1/apps/${name}/lifecycle`);
  const action = useAction<string>();
  const { result: message, error } = action;
  const run = (what: () => Promise<string>) =>
    action.run(async () => {
      const said = await what();
      secrets.reload();
      lifecycle.reload();
      onChanged();
      return said;
    });
  const deployments = useApi<{ items: { version: string; env: string; state: string; startedAt: string }[] }>(
    `/api/v1/apps/${name}/deployments`,
  );
  const stage = lifecycle.data?.stage;
  // What a roll back would go to, as the platform chooses it: the newest live version before the running one.
  const live = [...(deployments.data?.items ?? [])]
    .filter((x) => x.env === 'live')
    .sort((x, y) => y.startedAt.localeCompare(x.startedAt));
  const current = live.find((x) => x.state === 'running')?.version;
  const running = (deployments.data?.items ?? []).some((x) => x.state === 'running');
  const previous = current ? live.find((x) => x.version !== current)?.version : undefined;
  return (
    <Section title="Manage">
      <h3>Secrets</h3>
      {secrets.data?.items.length === 0 ? <p className="muted">The manifest declares no secret.</p> : null}
      {secrets.data?.items.map((s) => (
        <SecretRow
          key={s.name}
          item={s}
          onSave={(value) =>
            run(async () => {
              const r = await api<{ version: number }>('PUT', `/api/v1/apps/${name}/secrets/${s.name}`, {
                value,
              });
              return `${s.name} is set (version ${r.version}). The value will not be shown again; the app reads it at its next start.`;
            })
          }
        />
      ))}
      <h3>Lifecycle</h3>
      <div className="grid">
        <form
          id="renew"
          onSubmit={(e) => {
            e.preventDefault();
            const purpose = String(new FormData(e.currentTarget).get('purpose') ?? '').trim();
            void run(async () => {
              await api('POST', `/api/v1/apps/${name}/renewal`, { purpose });
              return `Renewal of ${name} requested; high-risk apps wait for a reviewer.`;
            });
          }}
        >
          <div className="field">
            <label htmlFor="purpose">Still needed? Say why, to renew it</label>
            <textarea id="purpose" name="purpose" rows={2} minLength={10} maxLength={1000} required />
          </div>
          <button type="submit">Renew</button>
        </form>
        <div>
          {running ? (
            <p>
              <button
                id="stop"
                type="button"
                onClick={() =>
                  run(async () => {
                    await api('DELETE', `/api/v1/apps/${name}/deployments/current`);
                    deployments.reload();
                    return `${name} is stopped. Deploy it again to start it.`;
                  })
                }
              >
                Stop {name}
              </button>
            </p>
          ) : null}
          {previous ? (
            <p>
              <button
                id="roll-back"
                type="button"
                onClick={() =>
                  run(async () => {
                    const r = await api<{ version: string }>('POST', `/api/v1/apps/${name}/rollback`, {});
                    deployments.reload();
                    return `${name} is back on ${r.version}.`;
                  })
                }
              >
                Roll back to {previous}
              </button>
            </p>
          ) : null}
          {stage === 'decommissioned' ? (
            <button
              id="restore"
              type="button"
              className="primary"
              onClick={() =>
                run(async () => {
                  await api('POST', `/api/v1/apps/${name}/restore`, {});
                  return `${name} is restored with its data; it starts on its next request. Set its secrets again.`;
                })
              }
            >
              Restore {name}
            </button>
          ) : (
            <Decommission
              name={name}
              onConfirm={(reason) =>
                run(async () => {
                  await api('POST', `/api/v1/apps/${name}/decommission`, { reason });
                  return `${name} is decommissioned: stopped, data archived, secrets deleted. It can be restored until the archive expires.`;
                })
              }
            />
          )}
        </div>
      </div>
      {hasRole(session, 'admin') ? (
        <>
          <h3>Administration</h3>
          <div className="grid">
            <form
              onSubmit={(e) => {
                e.preventDefault();
                const reason = String(new FormData(e.currentTarget).get('exempt-reason') ?? '').trim();
                void run(async () => {
                  await api('PUT', `/api/v1/apps/${name}/exemption`, { reason });
                  return `${name} is exempt from inactivity checks: ${reason}`;
                });
              }}
            >
              <div className="field">
                <label htmlFor="exempt-reason">Exempt from inactivity checks, because</label>
                <input id="exempt-reason" name="exempt-reason" minLength={10} maxLength={1000} required />
              </div>
              <button type="submit">Exempt</button>
            </form>
            <form
              id="owner"
              onSubmit={(e) => {
                e.preventDefault();
                const owner = String(new FormData(e.currentTarget).get('new-owner') ?? '').trim();
                void run(async () => {
                  await api('POST', `/api/v1/apps/${name}/owner`, { owner });
                  return `${owner} owns ${name} now, and is told so.`;
                });
              }}
            >
              <div className="field">
                <label htmlFor="new-owner">Give it a new owner (e-mail)</label>
                <input id="new-owner" name="new-owner" type="email" required />
              </div>
              <button type="submit">Change the owner</button>
            </form>
            <form
              onSubmit={(e) => {
                e.preventDefault();
                const data = new FormData(e.currentTarget);
                const team = String(data.get('team') ?? '').trim();
                const owner = String(data.get('lead') ?? '').trim();
                void run(async () => {
                  await api('POST', `/api/v1/apps/${name}/graduation`, { team, owner });
                  return `${name} graduated to ${team}; ${owner} owns it now. Its export bundle is on its way to them.`;
                });
              }}
            >
              <div className="field">
                <label htmlFor="team">Graduate to the engineering team</label>
                <input id="team" name="team" maxLength={63} required />
              </div>
              <div className="field">
                <label htmlFor="lead">Team lead who will own it (e-mail)</label>
                <input id="lead" name="lead" type="email" required />
              </div>
              <button type="submit">Graduate</button>
            </form>
          </div>
        </>
      ) : null}
      <Outcome error={error} said={message} />
    </Section>
  );
}

function SecretRow({ item, onSave }: { item: SecretItem; onSave: (value: string) => Promise<void> }) {
  const [value, setValue] = useState('');
  const id = `secret-${item.name}`;
  return (
    <form
      className="secret-row"
      onSubmit={async (e) => {
        e.preventDefault();
        if (!value) return;
        await onSave(value);
        setValue('');
      }}
    >
      <div className="field grow">
        <label htmlFor={id}>
          {item.name}{' '}
          <span className="muted">
            {item.set ? (
              <>
                (set, version {item.version}, by {item.updatedBy}, <When at={item.updatedAt} />)
              </>
            ) : (
              '(not set)'
            )}
          </span>
        </label>
        <input
          id={id}
          type="password"
          autoComplete="new-password"
          value={value}
          onChange={(e) => setValue(e.target.value)}
        />
      </div>
      <button type="submit" disabled={!value}>
        Save {item.name}
      </button>
    </form>
  );
}

function Decommission({ name, onConfirm }: { name: string; onConfirm: (reason: string) => void }) {
  const [asking, setAsking] = useState(false);
  const [reason, setReason] = useState('');
  if (!asking)
    return (
      <button type="button" className="danger" onClick={() => setAsking(true)}>
        Decommission…
      </button>
    );
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        onConfirm(reason.trim());
        setAsking(false);
      }}
    >
      <div className="field">
        <label htmlFor="reason">Why is {name} retired?</label>
        <input
          id="reason"
          value={reason}
          minLength={10}
          maxLength={1000}
          required
          onChange={(e) => setReason(e.target.value)}
        />
      </div>
      <button type="submit" className="danger">
        Decommission {name}
      </button>{' '}
      <button type="button" onClick={() => setAsking(false)}>
        Cancel
      </button>
    </form>
  );
}
