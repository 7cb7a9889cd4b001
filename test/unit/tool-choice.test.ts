// A tool_choice naming one function (which llama-server reads as "auto"): the body narrowed to that
// tool with "required", in OpenAI chat's, the Responses API's and Anthropic's shapes.
import { describe, expect, it } from 'vitest';
import { forcedName, forceTool } from '../../daemon/api/tool-choice';
import { chatOfMessages } from '../../daemon/api/anthropic-request';

const W = 'POST /v1/chat/completions';
const chatTool = (name: string) => ({ type: 'function', function: { name, parameters: { type: 'object' } } });

describe('forcedName', () => {
  it("reads the name in chat's, the Responses API's and Anthropic's shape, and leaves strings and other kinds alone", () => {
    expect(forcedName({ type: 'function', function: { name: 'f' } }, 'function', W)).toBe('f');
    expect(forcedName({ type: 'function', name: 'g' }, 'function', W)).toBe('g');
    for (const choice of ['auto', 'required', 'none', undefined, null, { type: 'allowed_tools' }, ['f']]) expect(forcedName(choice, 'function', W)).toBeUndefined();
    expect(forcedName({ type: 'tool', name: 'h' }, 'tool', W)).toBe('h');
    expect(forcedName({ type: 'tool', name: 'h' }, 'function', W)).toBeUndefined();
  });

  it('refuses a function choice without a name', () => {
    expect(() => forcedName({ type: 'function', function: {} }, 'function', W)).toThrow(/^POST \/v1\/chat\/completions: "tool_choice" of type "function" must name it/);
  });
});

describe('forceTool', () => {
  it('keeps only the named tool and requires a call', () => {
    const body: Record<string, unknown> = { tools: [chatTool('a'), chatTool('b')], tool_choice: { type: 'function', function: { name: 'b' } } };
    forceTool(body, 'b', W);
    expect(body).toEqual({ tools: [chatTool('b')], tool_choice: 'required' });
    const responses: Record<string, unknown> = { tools: [{ type: 'function', name: 'a' }, { type: 'function', name: 'b' }] };
    forceTool(responses, 'a', W);
    expect(responses.tools).toEqual([{ type: 'function', name: 'a' }]);
  });

  it('refuses a name no tool has, naming those there are', () => {
    expect(() => forceTool({ tools: [chatTool('a'), chatTool('b')] }, 'c', W)).toThrow('POST /v1/chat/completions: "tool_choice" names function "c", which is not in "tools" (it has "a", "b") — add it to "tools" or name one of those');
    expect(() => forceTool({}, 'c', W)).toThrow('(there are none)');
  });
});

describe("Anthropic's named tool choice", () => {
  it('offers only that tool and requires a call', () => {
    const tools = [{ name: 'a', input_schema: { type: 'object' } }, { name: 'b', input_schema: { type: 'object' } }];
    const { chat } = chatOfMessages({ model: 'm', max_tokens: 8, messages: [{ role: 'user', content: 'Hi' }], tools, tool_choice: { type: 'tool', name: 'b' } }, 'POST /v1/messages', 8192, () => {});
    expect(chat.tool_choice).toBe('required');
    expect(chat.tools).toEqual([{ type: 'function', function: { name: 'b', description: '', parameters: { type: 'object' } } }]);
    expect(() => chatOfMessages({ model: 'm', max_tokens: 8, messages: [{ role: 'user', content: 'Hi' }], tools, tool_choice: { type: 'tool' } }, 'POST /v1/messages', 8192, () => {})).toThrow(
      /"tool_choice" of type "tool" must name it/,
    );
  });
});
