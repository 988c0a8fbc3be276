// How an app is started: the platform's own Node.js runs one file of the app, with the Node options and
// arguments the manifest asks for. `runtime.entry` + `runtime.args` name the file and what follows it;
// `runtime.command` is the same written as one command line (`[node, --enable-source-maps, dist/server.js,
// --port-from-env]`), which is how apps' READMEs and package.json `start` scripts say it.

/** What a manifest's `runtime` may hold about the start command. */
export type StartFields = { entry?: string; command?: string[]; args?: string[] };

/** The start command as the runtimes use it: Node options, the file (relative to the app folder), its arguments. */
export type StartCommand = { nodeOptions: string[]; entry: string; args: string[] };

/** A file of the app: relative, inside it, no `..`. */
export const appFile = /^(?!.*\.\.)(?:\.\/)?[A-Za-z0-9_@][A-Za-z0-9_@./-]{0,199}$/;

/**
 * Node options an app may not start with, and why: code that is not in the reviewed artifact, a debugger
 * port, files written outside the app's data, or the platform's own settings.
 */
const refusedOptions: [RegExp, string][] = [
  [
    /^(-e|--eval|-p|--print|-i|--interactive|-c|--check|--test|--run)$/,
    'the app runs a file of its artifact, not code written in its manifest',
  ],
  [/^--(inspect|debug)/, 'no debugger port in a running app'],
  [
    /^--(cpu-prof|heap-prof|prof|diagnostic-dir|report-dir|redirect-warnings|heapsnapshot)/,
    'profiles and reports would be written outside the app’s data',
  ],
  [
    /^--(env-file|experimental-default-type|experimental-policy|policy-integrity|openssl-config|use-openssl-ca|use-bundled-ca|tls-)/,
    'the platform sets how the app trusts certificates and where its settings come from',
  ],
];

/**
 * The start command of a manifest's runtime, or the problems with it (each with its JSON pointer). A command
 * starts with `node`; options come before the file and are written `--name` or `--name=value`; the first
 * item that is not an option is the file; the rest, and then `args`, are the file's arguments.
 */
export function startCommandOf(
  runtime: StartFields | undefined,
): { ok: true; start: StartCommand } | { ok: false; problems: { path: string; message: string }[] } {
  const extra = runtime?.args ?? [];
  if (!runtime?.command)
    return { ok: true, start: { nodeOptions: [], entry: runtime?.entry ?? 'server.js', args: extra } };
  const problems: { path: string; message: string }[] = [];
  const [program, ...rest] = runtime.command;
  if (runtime.entry !== undefined)
    problems.push({
      path: '/runtime/entry',
      message: 'give runtime.command or runtime.entry, not both (the command names the file)',
    });
  if (program !== 'node')
    problems.push({
      path: '/runtime/command/0',
      message: `a command starts with node, the platform's Node.js (got "${program}"); to run a package's binary, name its file, e.g. [node, node_modules/next/dist/bin/next, start]`,
    });
  const at = rest.findIndex((item) => !item.startsWith('-'));
  const nodeOptions = at === -1 ? rest : rest.slice(0, at);
  nodeOptions.forEach((option, i) => {
    const path = `/runtime/command/${i + 1}`;
    const name = option.split('=')[0]!;
    const refused = refusedOptions.find(([pattern]) => pattern.test(name));
    if (refused) problems.push({ path, message: `${name} is not allowed: ${refused[1]}` });
    else if (!/^--[a-z0-9][a-z0-9-]*(=\S{1,200})?$/.test(option))
      problems.push({ path, message: `"${option}" is not a Node option written --name or --name=value` });
    else if (
      /^--(require|import|loader|experimental-loader)=/.test(option) &&
      !appFile.test(option.slice(option.indexOf('=') + 1))
    )
      problems.push({ path, message: `${option} must name a file inside the app (relative, no ..)` });
  });
  const entry = at === -1 ? undefined : rest[at]!;
  if (entry === undefined)
    problems.push({
      path: '/runtime/command',
      message: 'the command names no file to run after node and its options',
    });
  else if (!appFile.test(entry))
    problems.push({
      path: `/runtime/command/${at + 1}`,
      message: `"${entry}" must be a file inside the app (relative, no ..)`,
    });
  if (problems.length) return { ok: false, problems };
  return {
    ok: true,
    start: { nodeOptions, entry: entry!.replace(/^\.\//, ''), args: [...rest.slice(at + 1), ...extra] },
  };
}

/** The start command of a runtime that registration already accepted. */
export function startCommand(runtime: StartFields | undefined): StartCommand {
  const r = startCommandOf(runtime);
  if (!r.ok)
    throw new Error(
      `runtime.command was accepted but is not valid: ${r.problems.map((p) => p.message).join('; ')}`,
    );
  return r.start;
}
