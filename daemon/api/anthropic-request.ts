// An Anthropic Messages request (POST /v1/messages) as the OpenAI chat request llama-server makes of it.
// llama-server has the route itself, but its conversion keeps only the fields it knows
// (tools/server/server-chat.cpp server_chat_convert_anthropic_to_oai) and so drops `id_slot`: sent
// there, the request would run in whichever slot llama-server picks, not the one the daemon leased, and
// the next request pinned to that slot would wait inside llama-server unseen. So the daemon converts it
// the same way, sends it to /v1/chat/completions with its slot, and speaks the answer back in Anthropic's
// shape (anthropic-answer.ts).
import { SlotwiseError, describeValue } from '../../shared/errors';
import { asObject, optBoolean, optNumber, optStringArray, type Obj } from '../server/validate';
import { forcedName, forceTool } from './tool-choice';

/** What the daemon needs of a Messages request: the chat body llama-server will run, and whether to stream. */
export interface ChatOfMessages {
  stream: boolean;
  /** The OpenAI chat request (no `model`; the route picks the model). */
  chat: Obj;
}

/** Refuses an image the model cannot take (openai.ts checkMediaPart), named where the client put it. */
export type ImageCheck = (part: Obj, where: string) => void;

/**
 * Fields passed on as they are: Anthropic's samplers (as llama-server passes them) and, beyond what its
 * own /v1/messages takes, llama.cpp's sampling and cache fields, so a client that knows it is talking to
 * llama.cpp can set them as on /v1/chat/completions.
 */
const PASSED_ON = ['temperature', 'top_p', 'top_k', 'chat_template_kwargs', 'cache_prompt', 'seed', 'min_p', 'repeat_penalty', 'presence_penalty', 'frequency_penalty'] as const;

/** max_tokens when the request has none (Anthropic requires it; llama-server takes this default). */
const DEFAULT_MAX_TOKENS = 4096;

/**
 * Checks the fields the conversion reads and converts the request as llama-server does. `maxTokens` caps
 * `max_tokens`: clients such as Claude Code ask 32,000 and more, and the model stops at its slot's
 * context anyway, so a larger ask is clamped rather than refused.
 */
export function chatOfMessages(raw: unknown, where: string, maxTokens: number, checkImage: ImageCheck): ChatOfMessages {
  const body = asObject(raw, where);
  const stream = optBoolean(body, 'stream', where) ?? false;
  const asked = optNumber(body, 'max_tokens', where, { integer: true, min: 1 }) ?? DEFAULT_MAX_TOKENS;
  optNumber(body, 'temperature', where, { min: 0, max: 100 });
  optNumber(body, 'top_p', where, { min: 0, max: 1 });
  optNumber(body, 'top_k', where, { integer: true, min: 0, max: 2_147_483_647 });
  const stop = optStringArray(body, 'stop_sequences', where);

  const messages: Obj[] = [];
  const system = systemText(body.system, where);
  if (system !== undefined) messages.push({ role: 'system', content: system });
  if (!Array.isArray(body.messages) || body.messages.length === 0) {
    throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}: "messages" must be a non-empty array of {role, content}, got ${describeValue(body.messages)}`);
  }
  body.messages.forEach((m, i) => messages.push(...chatMessages(asObject(m, `${where}: messages[${i}]`), `${where}: messages[${i}]`, checkImage)));

  const chat: Obj = { messages, max_tokens: Math.min(asked, maxTokens) };
  if (Array.isArray(body.tools)) chat.tools = body.tools.map((t, i) => chatTool(asObject(t, `${where}: tools[${i}]`)));
  const choice = toolChoice(body.tool_choice);
  if (choice !== undefined) chat.tool_choice = choice;
  // A named tool: only it is offered, and a call is required (llama-server's own conversion would let the model call any).
  const named = forcedName(body.tool_choice, 'tool', where);
  if (named !== undefined) forceTool(chat, named, where);
  // At most one call, as asked (llama-server's own conversion drops this; its chat route reads parallel_tool_calls).
  if (isObj(body.tool_choice) && body.tool_choice.disable_parallel_tool_use === true) chat.parallel_tool_calls = false;
  if (stop !== undefined) chat.stop = stop;
  for (const key of PASSED_ON) if (body[key] !== undefined) chat[key] = body[key];
  const thinking = body.thinking as Obj | undefined;
  if (thinking && typeof thinking === 'object' && thinking.type === 'enabled') {
    chat.thinking_budget_tokens = typeof thinking.budget_tokens === 'number' ? thinking.budget_tokens : 10_000;
  }
  return { stream, chat };
}

/** `system` as one string: a string, or the text of its text blocks (others are dropped, as llama-server does). */
function systemText(system: unknown, where: string): string | undefined {
  if (system === undefined || system === null) return undefined;
  if (typeof system === 'string') return steadyBillingHeader(system);
  if (!Array.isArray(system)) throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}: "system" must be a string or an array of {"type": "text", "text": …} blocks, got ${describeValue(system)}`);
  return system
    .filter((b): b is Obj => isObj(b) && b.type === 'text')
    .map((b) => steadyBillingHeader(typeof b.text === 'string' ? b.text : ''))
    .join('');
}

/**
 * Claude Code starts its system prompt with `x-anthropic-billing-header: …; cch=a5145;`, a stamp that
 * changes on every request, so no prompt cache would get past it. llama-server writes it as `fffff`
 * (server-chat.cpp normalize_anthropic_billing_header, llama.cpp PR 21793); so does the daemon, whose
 * affinity key and llama-server's cache then both see the same prefix each turn.
 */
export function steadyBillingHeader(text: string): string {
  const PREFIX = 'x-anthropic-billing-header:';
  if (!text.startsWith(PREFIX)) return text;
  const at = text.indexOf('cch=', PREFIX.length);
  if (at < 0) return text;
  const from = at + 4;
  if (from + 5 < text.length && text[from + 5] === ';') return `${text.slice(0, from)}fffff${text.slice(from + 5)}`;
  return text;
}

/** Where an image's base64 sits in a request: an image block (its `source.data`), lifted unparsed by the body reader. */
export function holdsAnthropicImage(container: unknown): boolean {
  return isObj(container) && container.type === 'image';
}

/** One Anthropic message as chat messages: itself, then a `tool` message per tool result it carries. */
function chatMessages(msg: Obj, where: string, checkImage: ImageCheck): Obj[] {
  const role = msg.role;
  if (role !== 'user' && role !== 'assistant') {
    throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}.role must be "user" or "assistant" (the system prompt goes in "system"), got ${describeValue(role)}`);
  }
  const content = msg.content;
  if (typeof content === 'string') return [{ role, content }];
  if (!Array.isArray(content)) throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}.content must be a string or an array of content blocks, got ${describeValue(content)}`);

  const parts: Obj[] = [];
  const toolCalls: Obj[] = [];
  const toolResults: Obj[] = [];
  let reasoning = '';
  content.forEach((raw, j) => {
    const block = asObject(raw, `${where}.content[${j}]`);
    switch (block.type) {
      case 'text':
        if (typeof block.text !== 'string') throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}.content[${j}].text must be a string, got ${describeValue(block.text)}`);
        parts.push({ type: 'text', text: block.text });
        break;
      case 'thinking':
        if (typeof block.thinking === 'string') reasoning += block.thinking;
        break;
      case 'image': {
        const part = imagePart(block.source, `${where}.content[${j}]`);
        checkImage(part, `${where}.content[${j}]`);
        parts.push(part);
        break;
      }
      case 'tool_use':
        toolCalls.push({
          id: typeof block.id === 'string' ? block.id : '',
          type: 'function',
          function: { name: typeof block.name === 'string' ? block.name : '', arguments: JSON.stringify(isObj(block.input) ? block.input : {}) },
        });
        break;
      case 'tool_result':
        toolResults.push(toolMessage(block, `${where}.content[${j}]`, checkImage));
        break;
      default:
        // Other blocks (documents, server tools' results) are not read by llama-server's conversion either.
        break;
    }
  });
  const out: Obj[] = [];
  if (parts.length > 0 || toolCalls.length > 0 || reasoning) {
    const chat: Obj = { role, content: parts.length > 0 ? parts : '' };
    if (toolCalls.length > 0) chat.tool_calls = toolCalls;
    if (reasoning) chat.reasoning_content = reasoning;
    out.push(chat);
  }
  return out.concat(toolResults);
}

/** An image block's source as an OpenAI image part: base64 as a data: URL; a URL as itself (the media check refuses it). */
function imagePart(source: unknown, where: string): Obj {
  if (!isObj(source)) throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}.source must be {"type": "base64", "media_type": …, "data": …}, got ${describeValue(source)}`);
  if (source.type === 'base64') {
    if (typeof source.data !== 'string') throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}.source.data must be the image's base64 text, got ${describeValue(source.data)}`);
    const mediaType = typeof source.media_type === 'string' ? source.media_type : 'image/jpeg';
    return { type: 'image_url', image_url: { url: `data:${mediaType};base64,${source.data}` } };
  }
  if (source.type === 'url') return { type: 'image_url', image_url: { url: typeof source.url === 'string' ? source.url : '' } };
  throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}.source.type must be "base64" or "url", got ${describeValue(source.type)}`);
}

/** A tool_result block as a chat `tool` message: text as a string, text with images as parts. */
function toolMessage(block: Obj, where: string, checkImage: ImageCheck): Obj {
  const id = typeof block.tool_use_id === 'string' ? block.tool_use_id : '';
  const content = block.content;
  if (typeof content === 'string') return { role: 'tool', tool_call_id: id, content };
  if (!Array.isArray(content)) return { role: 'tool', tool_call_id: id, content: '' };
  let text = '';
  const parts: Obj[] = [];
  let images = false;
  content.forEach((raw, k) => {
    if (!isObj(raw)) return;
    if (raw.type === 'text' && typeof raw.text === 'string') {
      text += raw.text;
      parts.push({ type: 'text', text: raw.text });
    } else if (raw.type === 'image') {
      const part = imagePart(raw.source, `${where}.content[${k}]`);
      checkImage(part, `${where}.content[${k}]`);
      parts.push(part);
      images = true;
    }
  });
  return { role: 'tool', tool_call_id: id, content: images ? parts : text };
}

/** A tool definition as an OpenAI function. */
function chatTool(tool: Obj): Obj {
  return {
    type: 'function',
    function: {
      name: typeof tool.name === 'string' ? tool.name : '',
      description: typeof tool.description === 'string' ? tool.description : '',
      parameters: isObj(tool.input_schema) ? tool.input_schema : {},
    },
  };
}

/** `tool_choice` as OpenAI's: auto, none, or "required" for any tool or a named one (as llama-server maps it). */
function toolChoice(choice: unknown): string | undefined {
  if (!isObj(choice)) return undefined;
  if (choice.type === 'auto') return 'auto';
  if (choice.type === 'none') return 'none';
  if (choice.type === 'any' || choice.type === 'tool') return 'required';
  return undefined;
}

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
