// The `prompt` shapes /v1/completions takes (daemon/api/openai.ts promptProblem): what llama-server
// reads (tools/server `tokenize_input_prompts`), refused before it otherwise, naming the element.
import { describe, expect, it } from 'vitest';
import { promptProblem } from '../../daemon/api/openai';

describe('promptProblem', () => {
  it.each([
    ['a string', 'Hello'],
    ['token ids', [1, 2, 3]],
    ['strings (a prompt each)', ['a', 'b']],
    ['strings and tokens mixed', [1, 'a']],
    ["OpenAI's token arrays", [[1, 2], [3]]],
    ['a mixed array among prompts', ['a', [1, 'b']]],
    ['an empty token array', [[]]],
    ['a multimodal object', [{ prompt_string: 'describe <__media__>', multimodal_data: ['...'] }]],
  ])('takes %s', (_what, prompt) => {
    expect(promptProblem(prompt)).toBeUndefined();
  });

  it.each([
    [42, '"prompt" must be a string, or an array of strings, token ids, token arrays or {"prompt_string": …} objects'],
    [null, '"prompt" must be a string, or an array of strings, token ids, token arrays or {"prompt_string": …} objects'],
    [[], '"prompt" is empty: give at least one string or token'],
    [[['a', null]], '"prompt[0][1]" must be a token id or a string'],
    [['ok', [[1]]], '"prompt[1][0]" must be a token id or a string'],
    [[{ a: 1 }], '"prompt[0]" must be a string, a token id, an array of tokens, or an object with a "prompt_string" string'],
    [[true], '"prompt[0]" must be a string, a token id, an array of tokens, or an object with a "prompt_string" string'],
  ])('refuses %j naming the element', (prompt, message) => {
    expect(promptProblem(prompt)).toBe(message);
  });
});
