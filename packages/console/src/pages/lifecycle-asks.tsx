import { api } from '../api.ts';
import type { LifecycleView } from '../contracts.ts';
import { hasRole, useSession } from '../session.tsx';
import { Outcome } from '../ui.tsx';
import { useAction } from '../use-action.ts';

/**
 * What the lifecycle asks of someone who is not the app's owner, where a notification sends them: a
 * reviewer approves a high-tier app's renewal; the person an app was offered to (its departed owner's
 * manager) takes it over.
 */
export function LifecycleAsks({
  name,
  owner,
  lifecycle,
  onChanged,
}: {
  name: string;
  owner: string;
  lifecycle: LifecycleView;
  onChanged: () => void;
}) {
  const session = useSession();
  const me = session.user.email;
  const action = useAction<string>();
  const run = (what: () => Promise<string>) =>
    action.run(async () => {
      const said = await what();
      onChanged();
      return said;
    });
  const renewal = lifecycle.renewalRequested;
  const mayApprove = renewal && hasRole(session, 'reviewer') && owner !== me && renewal.by !== me;
  const offered = lifecycle.offeredTo?.toLowerCase() === me.toLowerCase();
  return (
    <>
      {renewal ? (
        <div id="renew-review">
          <p>
            {renewal.by} asked to renew {name}: “{renewal.purpose}”.
            {mayApprove ? '' : ' A reviewer other than its owner approves it.'}
          </p>
          {mayApprove ? (
            <button
              type="button"
              className="primary"
              disabled={action.busy}
              onClick={() =>
                run(async () => {
                  await api('POST', `/api/v1/apps/${name}/renewal/approve`, {});
                  return `The renewal of ${name} is approved.`;
                })
              }
            >
              Approve the renewal
            </button>
          ) : null}
        </div>
      ) : null}
      {offered ? (
        <div id="owner-offer">
          <p>
            {name} was offered to you: its owner left, and you are their manager. Take it over, or leave it
            and it is retired on the usual schedule.
          </p>
          <button
            type="button"
            className="primary"
            disabled={action.busy}
            onClick={() =>
              run(async () => {
                await api('POST', `/api/v1/apps/${name}/owner`, { owner: me });
                return `You own ${name} now. Look at its secrets and who uses it.`;
              })
            }
          >
            Take over {name}
          </button>
        </div>
      ) : null}
      <Outcome error={action.error} said={action.result} />
    </>
  );
}
