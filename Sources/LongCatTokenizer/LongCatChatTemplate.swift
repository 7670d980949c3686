/// The chat template `longcat train-tokenizer` writes into tokenizer_config.json: LongCat's `[Round N] USER: ...
/// ASSISTANT: ...</s>` turns, a system prompt listing the tools, calls in `<longcat_tool_call>` tags and tool results in
/// `<longcat_tool_response>` tags (the template of the shared tokenizer fixture).
public enum LongCatChatTemplate {
    public static let text = ##"""
{%- set ns = namespace(round=0, system='') -%}
{%- if messages and messages[0]['role'] == 'system' -%}
  {%- set ns.system = messages[0]['content'] -%}
  {%- set rest = messages[1:] -%}
{%- else -%}
  {%- set rest = messages -%}
{%- endif -%}
{%- if tools is defined and tools -%}
  {%- set ns.system = ns.system ~ ('\n\n' if ns.system else '') ~ '## Tools\nYou can call these functions. Put each call in <longcat_tool_call></longcat_tool_call> tags as {"name": ..., "arguments": ...}.\n' -%}
  {%- for tool in tools -%}
    {%- set ns.system = ns.system ~ (tool['function'] if tool['function'] is defined else tool) | tojson ~ '\n' -%}
  {%- endfor -%}
{%- endif -%}
{%- if ns.system -%}{{ 'SYSTEM:' ~ ns.system | trim }}{%- endif -%}
{%- for message in rest -%}
  {%- if message['role'] == 'user' -%}
    {{ '[Round ' ~ ns.round ~ '] USER:' ~ message['content'] }}
  {%- elif message['role'] == 'assistant' -%}
    {{ ' ASSISTANT:' }}
    {%- if message['content'] is string -%}{{ message['content'] }}{%- endif -%}
    {%- if message.tool_calls is defined and message.tool_calls -%}
      {%- for call in message.tool_calls -%}
        {{ '<longcat_tool_call>' ~ {'name': call['function']['name'], 'arguments': call['function']['arguments']} | tojson ~ '</longcat_tool_call>' }}
      {%- endfor -%}
    {%- endif -%}
    {{ '</s>' }}
    {%- set ns.round = ns.round + 1 -%}
  {%- elif message['role'] == 'tool' -%}
    {{ '[Round ' ~ ns.round ~ '] USER:<longcat_tool_response>' ~ message['content'] ~ '</longcat_tool_response>' }}
  {%- else -%}
    {{ raise_exception('Unknown role: ' ~ message['role']) }}
  {%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}{{ ' ASSISTANT:' }}{%- endif -%}
"""##
}
