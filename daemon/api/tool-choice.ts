// A `tool_choice` that names one function. llama-server takes only the strings "auto", "none" and
// "required" (common/chat.cpp common_chat_tool_choice_parse_oaicompat); an object is read as a wrong
// type and silently becomes "auto" (tools/server/server-common.cpp json_value), so a client forcing a
// function (structured output through a forced call, as LangChain's with_structured_output does) got
// free text or another tool. The daemon keeps only the named tool and asks for "required": the
// grammar llama-server builds from the tools then allows exactly that call.
import { SlotwiseError, describeValue } from '../../shared/errors';
import type { Obj } from '../server/validate';

/** Where a tool's name sits: OpenAI chat's `{type, function: {name}}`, the Responses API's and Anthropic's `{name}` (converted to chat's by then). */
function toolName(tool: unknown): unknown {
  if (!tool || typeof tool !== 'object') return undefined;
  const t = tool as Obj;
  return t.function && typeof t.function === 'object' ? (t.function as Obj).name : t.name;
}

/** The choice types that name one tool: OpenAI's (chat and Responses) and Anthropic's, with the shape to write. */
const NAMING = { function: '{"type": "function", "function": {"name": …}}', tool: '{"type": "tool", "name": …}' } as const;

/**
 * The tool `choice` forces when it is of `type`: chat's `{"type": "function", "function": {"name"}}`,
 * the Responses API's `{"type": "function", "name"}`, Anthropic's `{"type": "tool", "name"}`; undefined
 * for a string or another kind of choice (those go on as sent). Such a choice without a name is refused.
 */
export function forcedName(choice: unknown, type: keyof typeof NAMING, where: string): string | undefined {
  if (!choice || typeof choice !== 'object' || Array.isArray(choice) || (choice as Obj).type !== type) return undefined;
  const name = toolName(choice);
  if (typeof name !== 'string' || name === '') {
    throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}: "tool_choice" of type "${type}" must name it (${NAMING[type]}), got ${describeValue(choice)}`);
  }
  return name;
}

/**
 * `tools` narrowed to the one named `name`, with `tool_choice` "required": the body llama-server then
 * answers with a call of that function. Refuses a name that no tool has, listing those it has.
 */
export function forceTool(body: Obj, name: string, where: string): void {
  const tools = Array.isArray(body.tools) ? (body.tools as unknown[]) : [];
  const tool = tools.find((t) => toolName(t) === name);
  if (!tool) {
    const names = tools.map(toolName).filter((n): n is string => typeof n === 'string');
    throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}: "tool_choice" names function "${name}", which is not in "tools" (${names.length ? `it has ${names.map((n) => `"${n}"`).join(', ')}` : 'there are none'}) — add it to "tools" or name one of those`);
  }
  body.tools = [tool];
  body.tool_choice = 'required';
}
