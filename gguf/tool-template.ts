// The chat template of the tiny `tools` model: ChatML with Qwen3-Coder's XML tool calls
// (`<tool_call>\n<function=NAME>\n<parameter=KEY>\nVALUE\n</parameter>\n</function>\n</tool_call>`).
// llama.cpp recognises that format by these markers (common/chat.cpp, "Qwen3-Coder XML tool calls")
// and then parses a reply's calls into OpenAI `tool_calls` and constrains them with a grammar: what
// lets a random-weight model make real tool calls through llama-server, for tests and for trying tool
// clients (Claude Code, the Anthropic and OpenAI SDKs) against the daemon. Written for Slotwise, in the
// shape of llama.cpp's `models/templates/Qwen3-Coder.jinja`, and kept short: tools are listed as JSON.
export const TOOL_CALL_TEMPLATE = [
  "{%- if tools is defined and tools | length > 0 %}",
  "{{- '<|im_start|>system\\n' ~ (messages[0].content if messages[0].role == 'system' else '') ~ '\\nTools:\\n<tools>' }}",
  "{%- for tool in tools %}{{- '\\n' ~ (tool | tojson) }}{%- endfor %}",
  "{{- '\\n</tools>\\nTo call a tool:\\n<tool_call>\\n<function=NAME>\\n<parameter=KEY>\\nVALUE\\n</parameter>\\n</function>\\n</tool_call><|im_end|>\\n' }}",
  "{%- elif messages[0].role == 'system' %}",
  "{{- '<|im_start|>system\\n' ~ messages[0].content ~ '<|im_end|>\\n' }}",
  "{%- endif %}",
  "{%- for message in messages if message.role != 'system' %}",
  "{%- if message.role == 'assistant' and message.tool_calls is defined and message.tool_calls | length > 0 %}",
  "{{- '<|im_start|>assistant' }}",
  "{%- if message.content is string and message.content | length > 0 %}{{- '\\n' ~ message.content }}{%- endif %}",
  "{%- for call in message.tool_calls %}",
  "{%- set call = call.function if call.function is defined else call %}",
  "{{- '\\n<tool_call>\\n<function=' ~ call.name ~ '>\\n' }}",
  "{%- for key, value in call.arguments | items %}",
  "{{- '<parameter=' ~ key ~ '>\\n' ~ (value | tojson if value is mapping or (value is sequence and value is not string) else value | string) ~ '\\n</parameter>\\n' }}",
  "{%- endfor %}",
  "{{- '</function>\\n</tool_call>' }}",
  "{%- endfor %}",
  "{{- '<|im_end|>\\n' }}",
  "{%- elif message.role == 'tool' %}",
  "{{- '<|im_start|>user\\n<tool_response>\\n' ~ message.content ~ '\\n</tool_response><|im_end|>\\n' }}",
  "{%- else %}",
  "{{- '<|im_start|>' ~ message.role ~ '\\n' ~ (message.content if message.content is string else '') ~ '<|im_end|>\\n' }}",
  "{%- endif %}",
  "{%- endfor %}",
  "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}",
].join('\n');
