import type { Duplex } from 'node:stream';

/** A TLS record header is 5 bytes; a record holds at most 16 KB plus what compression and padding add. */
const maxRecord = 5 + 16_384 + 2048;

/**
 * Reads the first TLS record a tunnel's client sends (its ClientHello), with whatever arrived after it,
 * and leaves the stream paused for the caller to pipe on. Null when the client sends something that is
 * not a TLS handshake, closes, or says nothing for `timeoutMs`.
 */
export function clientHello(socket: Duplex, head: Buffer, timeoutMs = 10_000): Promise<Buffer | null> {
  return new Promise((resolve) => {
    let buf = head;
    const finish = (result: Buffer | null) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.pause();
      resolve(result);
    };
    const check = () => {
      if (buf.length >= 1 && buf[0] !== 0x16) return finish(null);
      if (buf.length < 5) return;
      const length = 5 + buf.readUInt16BE(3);
      if (length > maxRecord) return finish(null);
      if (buf.length >= length) finish(buf);
    };
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      check();
    };
    const onEnd = () => finish(null);
    const timer = setTimeout(() => finish(null), timeoutMs);
    timer.unref();
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    check();
  });
}

/**
 * The host name in a ClientHello's server_name extension (RFC 6066), or null when there is none or the
 * message is malformed. Every length is checked against what remains, so a hostile hello cannot read past
 * its own bytes.
 */
export function serverName(record: Buffer): string | null {
  let at = 5;
  const need = (n: number) => at + n <= record.length;
  const u8 = () => record.readUInt8(at++);
  const u16 = () => {
    const v = record.readUInt16BE(at);
    at += 2;
    return v;
  };
  if (record[0] !== 0x16 || !need(4) || u8() !== 0x01) return null;
  at += 3; // handshake length
  if (!need(2 + 32 + 1)) return null;
  at += 2 + 32; // client version, random
  const session = u8();
  if (!need(session + 2)) return null;
  at += session;
  const ciphers = u16();
  if (!need(ciphers + 1)) return null;
  at += ciphers;
  const compression = u8();
  if (!need(compression + 2)) return null;
  at += compression;
  const extensionsEnd = at + 2 + record.readUInt16BE(at);
  at += 2;
  if (extensionsEnd > record.length) return null;
  while (at + 4 <= extensionsEnd) {
    const type = u16();
    const length = u16();
    if (at + length > extensionsEnd) return null;
    if (type === 0x0000) {
      const extensionEnd = at + length;
      if (length < 2) return null;
      const listEnd = at + 2 + record.readUInt16BE(at);
      at += 2;
      if (listEnd > extensionEnd) return null;
      while (at + 3 <= listEnd) {
        const kind = u8();
        const size = u16();
        if (at + size > listEnd) return null;
        if (kind === 0) return record.toString('ascii', at, at + size);
        at += size;
      }
      return null;
    }
    at += length;
  }
  return null;
}
