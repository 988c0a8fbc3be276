/**
 * git's answer to a push (`receive-pack`'s report-status), rewritten when the platform refuses the push
 * after git took it: every branch the push moved is reported `ng` with the platform's reason, which git shows
 * the pusher as `! [remote rejected] BRANCH (REASON)` and fails the push.
 */

const pkt = (payload: Buffer | string) => {
  const bytes = typeof payload === 'string' ? Buffer.from(payload) : payload;
  return Buffer.concat([Buffer.from((bytes.length + 4).toString(16).padStart(4, '0')), bytes]);
};
const flush = Buffer.from('0000');

/**
 * The report of a refused push, in the form git's own answer took: multiplexed (side-band) when the client
 * asked for it, which git's answer shows by its first packet's band byte, plain report-status otherwise.
 * @example refusedReport(held, ['refs/heads/race'], 'race moved meanwhile: fetch and push again')
 */
export function refusedReport(answer: Buffer, refs: string[], reason: string): Buffer {
  // A reason is one line, without the characters git's report parsing splits on.
  const why = reason.replace(/[\r\n\0]+/g, ' ').slice(0, 400);
  const report = Buffer.concat([pkt('unpack ok\n'), ...refs.map((ref) => pkt(`ng ${ref} ${why}\n`)), flush]);
  const sideband = answer.length > 4 && [1, 2, 3].includes(answer[4]!);
  if (!sideband) return report;
  const packets: Buffer[] = [pkt(Buffer.concat([Buffer.from([2]), Buffer.from(`microapp: ${why}\n`)]))];
  // Band 1 carries the report; a packet holds at most 65,515 bytes of it.
  for (let i = 0; i < report.length; i += 65_515)
    packets.push(pkt(Buffer.concat([Buffer.from([1]), report.subarray(i, i + 65_515)])));
  return Buffer.concat([...packets, flush]);
}
