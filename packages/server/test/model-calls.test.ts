import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { redactInstruction } from '../src/modules/agents/agent-gate.ts';
import { tokenUsage } from '../src/modules/egress/model-calls.ts';

const json = (o: unknown) => Buffer.from(JSON.stringify(o));
const sse = (...events: unknown[]) =>
  Buffer.from(`${events.map((e) => `event: x\ndata: ${JSON.stringify(e)}\n\n`).join('')}data: [DONE]\n\n`);

describe('the tokens a model says it used', () => {
  test("OpenAI's chat, embeddings and responses answers", () => {
    assert.deepEqual(
      tokenUsage('application/json', json({ usage: { prompt_tokens: 9, completion_tokens: 3 } })),
      {
        input: 9,
        output: 3,
      },
    );
    assert.deepEqual(
      tokenUsage('application/json', json({ usage: { prompt_tokens: 40, total_tokens: 40 } })),
      {
        input: 40,
        output: 0,
      },
    );
    assert.deepEqual(tokenUsage('application/json', json({ usage: { input_tokens: 7, output_tokens: 2 } })), {
      input: 7,
      output: 2,
    });
  });

  test("Anthropic's messages, whole and streamed (input in message_start, output in message_delta)", () => {
    assert.deepEqual(
      tokenUsage(
        'application/json',
        json({ type: 'message', usage: { input_tokens: 25, output_tokens: 11 } }),
      ),
      {
        input: 25,
        output: 11,
      },
    );
    const stream = sse(
      { type: 'message_start', message: { usage: { input_tokens: 25, output_tokens: 1 } } },
      { type: 'content_block_delta', delta: { text: 'Hi' } },
      { type: 'message_delta', usage: { output_tokens: 15 } },
    );
    assert.deepEqual(tokenUsage('text/event-stream; charset=utf-8', stream), { input: 25, output: 15 });
  });

  test('an answer that says nothing, or lies with negative or non-numeric counts, counts nothing', () => {
    assert.equal(tokenUsage('application/json', json({ choices: [] })), null);
    assert.equal(tokenUsage('application/json', Buffer.from('not json')), null);
    assert.equal(
      tokenUsage('application/json', json({ usage: { prompt_tokens: -5, completion_tokens: '9' } })),
      null,
    );
  });
});

describe("an agent's instruction as it is kept", () => {
  test('personal data is masked and credentials are removed', () => {
    const kept = redactInstruction(
      'Build it for jane.doe@example.org, card 4111 1111 1111 1111, use sk-proj-abcdefghijklmnop1234 and mat_abcdefghijklmnopqrstuvwxyz0123',
    );
    assert.doesNotMatch(kept, /jane\.doe|4111 1111 1111 1111|sk-proj-abcdef|mat_abcdef/);
    assert.match(kept, /Build it for/);
    assert.match(kept, /\[redacted:credential\]/);
  });

  test('a long one is cut to 2,000 characters', () => {
    assert.equal(redactInstruction('x'.repeat(10_000)).length, 2001);
  });
});
