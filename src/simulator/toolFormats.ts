/**
 * Tools in each wire format, read and checked as the real APIs check them: tool definitions (name
 * pattern, an object schema), the tool choice, and the order of tool turns (a result answers a call
 * of the turn just before; every call gets its result before the conversation goes on). What a real
 * API refuses, the simulator refuses with a 400 in that API's words; what it accepts becomes a
 * ToolRequest (tools.ts) and turns whose text is the prompt.
 */
import { BadRequest, obj, textOf } from './badRequest.js';
import { type SimTool, type SimToolChoice, TOOL_NAME, type ToolRequest } from './tools.js';

export interface ToolTurn {
  readonly role: 'user' | 'assistant';
  readonly text: string;
}

export interface ParsedTools {
  readonly turns: readonly ToolTurn[];
  readonly tools?: ToolRequest | undefined;
  /** The tool definitions as sent, for counting their tokens (a provider bills them as input). */
  readonly toolText: string;
}

function schemaOf(v: unknown, where: string, fn: string): Record<string, unknown> {
  const s = v === undefined ? { type: 'object', properties: {} } : obj(v, where);
  if (s.type !== 'object')
    throw new BadRequest(`Invalid schema for function '${fn}': schema must be a JSON Schema of 'type: "object"', got 'type: "${String(s.type)}"'.`);
  return s;
}

function named(name: unknown, where: string): string {
  if (typeof name !== 'string' || !TOOL_NAME.test(name))
    throw new BadRequest(`Invalid '${where}': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]{1,64}$'.`);
  return name;
}

/** Gemini's rule: a letter or an underscore first, then letters, digits, underscores, dots, colons or dashes, 64 at most. */
const GEMINI_TOOL_NAME = /^[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}$/;

const resultText = (name: string, content: unknown) => `[${name} result] ${typeof content === 'string' ? content : JSON.stringify(content ?? null)}`;

/** OpenAI chat completions (and Mistral's, which says `any` for `required`). */
export function openAITools(b: Record<string, unknown>, msgs: ReadonlyArray<Record<string, unknown>>): ParsedTools {
  const tools: SimTool[] = [];
  if (b.tools !== undefined && b.tools !== null) {
    if (!Array.isArray(b.tools)) throw new BadRequest("Invalid type for 'tools': expected an array.");
    for (const [i, t] of b.tools.entries()) {
      const o = obj(t, `tools[${i}]`);
      if (o.type !== 'function') throw new BadRequest(`Invalid value for 'tools[${i}].type': expected 'function'.`);
      const f = obj(o.function, `tools[${i}].function`);
      const name = named(f.name, `tools[${i}].function.name`);
      tools.push({ name, parameters: schemaOf(f.parameters, `tools[${i}].function.parameters`, name) });
    }
  }
  let choice: SimToolChoice = 'auto';
  const tc = b.tool_choice;
  if (tc !== undefined && tc !== null) {
    if (tools.length === 0) throw new BadRequest("Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.");
    if (tc === 'none' || tc === 'auto' || tc === 'required') choice = tc;
    else if (tc === 'any') choice = 'required';
    else {
      const name = obj(obj(tc, 'tool_choice').function, 'tool_choice.function').name;
      if (!tools.some((t) => t.name === name))
        throw new BadRequest(`Invalid value for 'tool_choice': no function named '${String(name)}' was specified in the 'tools' parameter.`);
      choice = { name: String(name) };
    }
  }
  const turns: ToolTurn[] = [];
  let open = new Map<string, string>();
  for (const [i, m] of msgs.entries()) {
    if (m.role === 'tool') {
      const id = m.tool_call_id;
      if (typeof id !== 'string' || !open.has(id))
        throw new BadRequest(`Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'. (messages[${i}])`);
      turns.push({ role: 'user', text: resultText(open.get(id) ?? '', textOf(m.content)) });
      open.delete(id);
      continue;
    }
    if (open.size > 0)
      throw new BadRequest(
        `An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: ${[...open.keys()].join(', ')}`,
      );
    if (m.role === 'assistant' && Array.isArray(m.tool_calls) && m.tool_calls.length > 0) {
      open = new Map();
      for (const [j, c] of m.tool_calls.entries()) {
        const call = obj(c, `messages[${i}].tool_calls[${j}]`);
        const f = obj(call.function, `messages[${i}].tool_calls[${j}].function`);
        if (typeof call.id !== 'string' || typeof f.name !== 'string' || typeof f.arguments !== 'string')
          throw new BadRequest(`Invalid 'messages[${i}].tool_calls[${j}]': id, function.name and function.arguments (a string) are required.`);
        open.set(call.id, f.name);
      }
      turns.push({ role: 'assistant', text: `${textOf(m.content)} [calls ${[...open.values()].join(', ')}]`.trim() });
    } else if (m.role === 'user' || m.role === 'assistant') turns.push({ role: m.role, text: textOf(m.content) });
  }
  if (open.size > 0)
    throw new BadRequest(
      `An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: ${[...open.keys()].join(', ')}`,
    );
  const last = msgs[msgs.length - 1];
  return {
    turns,
    toolText: tools.length > 0 ? JSON.stringify(b.tools) : '',
    ...(tools.length > 0 ? { tools: { tools, choice, afterToolResult: last?.role === 'tool' } } : {}),
  };
}

type Block = Record<string, unknown>;
const blocksOf = (content: unknown, where: string): Block[] =>
  typeof content === 'string' ? [{ type: 'text', text: content }] : Array.isArray(content) ? content.map((c, j) => obj(c, `${where}.${j}`)) : [];

/** Anthropic messages: `tool_use` blocks in the assistant's turn, `tool_result` blocks in the next user turn. */
export function anthropicTools(b: Record<string, unknown>, msgs: ReadonlyArray<Record<string, unknown>>): ParsedTools {
  const tools: SimTool[] = [];
  if (b.tools !== undefined) {
    if (!Array.isArray(b.tools)) throw new BadRequest('tools: Input should be a valid list');
    for (const [i, t] of b.tools.entries()) {
      const o = obj(t, `tools.${i}`);
      if (typeof o.name !== 'string' || !TOOL_NAME.test(o.name))
        throw new BadRequest(`tools.${i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'`);
      if (o.input_schema === undefined) throw new BadRequest(`tools.${i}.custom.input_schema: Field required`);
      const s = obj(o.input_schema, `tools.${i}.custom.input_schema`);
      if (s.type !== 'object') throw new BadRequest(`tools.${i}.custom.input_schema.type: Input should be 'object'`);
      tools.push({ name: o.name, parameters: s });
    }
  }
  let choice: SimToolChoice = 'auto';
  if (b.tool_choice !== undefined) {
    const c = obj(b.tool_choice, 'tool_choice');
    if (c.type === 'none') choice = 'none';
    else if (c.type === 'any') choice = 'required';
    else if (c.type === 'tool') {
      if (!tools.some((t) => t.name === c.name)) throw new BadRequest(`tool_choice.tool.name: no tool named ${String(c.name)} in tools`);
      choice = { name: String(c.name) };
    } else if (c.type !== 'auto') throw new BadRequest("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'");
  }
  const turns: ToolTurn[] = [];
  let open = new Map<string, string>();
  for (const [i, m] of msgs.entries()) {
    const blocks = blocksOf(m.content, `messages.${i}.content`);
    const results = blocks.filter((x) => x.type === 'tool_result');
    if (m.role === 'user') {
      for (const [j, r] of results.entries())
        if (typeof r.tool_use_id !== 'string' || !open.has(r.tool_use_id))
          throw new BadRequest(
            `messages.${i}.content.${j}: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${String(r.tool_use_id)}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`,
          );
      const missing = [...open.keys()].filter((id) => !results.some((r) => r.tool_use_id === id));
      if (missing.length > 0)
        throw new BadRequest(
          `messages.${i - 1}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${missing.join(', ')}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`,
        );
      const text = [
        ...results.map((r) => resultText(open.get(String(r.tool_use_id)) ?? '', textOf(r.content) || r.content)),
        ...blocks.filter((x) => x.type === 'text').map((x) => String(x.text)),
      ].join('\n');
      open = new Map();
      turns.push({ role: 'user', text });
    } else {
      if (open.size > 0)
        throw new BadRequest(
          `messages.${i - 1}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${[...open.keys()].join(', ')}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`,
        );
      if (results.length > 0) throw new BadRequest(`messages.${i}: tool_result blocks may only be in user messages`);
      const uses = blocks.filter((x) => x.type === 'tool_use');
      for (const u of uses) open.set(String(u.id), String(u.name));
      const text = blocks
        .filter((x) => x.type === 'text')
        .map((x) => String(x.text))
        .join('');
      turns.push({ role: 'assistant', text: uses.length > 0 ? `${text} [calls ${uses.map((u) => String(u.name)).join(', ')}]`.trim() : text });
    }
  }
  if (open.size > 0)
    throw new BadRequest(
      `messages.${msgs.length - 1}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${[...open.keys()].join(', ')}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`,
    );
  const last = msgs[msgs.length - 1];
  // The model answers the results in words unless the user wrote again after them.
  const afterToolResult = last?.role === 'user' && blocksOf(last.content, 'last').at(-1)?.type === 'tool_result';
  return { turns, toolText: tools.length > 0 ? JSON.stringify(b.tools) : '', ...(tools.length > 0 ? { tools: { tools, choice, afterToolResult } } : {}) };
}

/** Gemini generateContent: `functionCall` parts in a model turn, `functionResponse` parts in the next user turn. */
export function geminiTools(b: Record<string, unknown>, contents: ReadonlyArray<Record<string, unknown>>): ParsedTools {
  const tools: SimTool[] = [];
  if (b.tools !== undefined) {
    if (!Array.isArray(b.tools)) throw new BadRequest('Invalid JSON payload received. tools must be a list.');
    for (const [i, t] of b.tools.entries()) {
      const decls = obj(t, `tools[${i}]`).functionDeclarations;
      if (decls === undefined) continue;
      if (!Array.isArray(decls)) throw new BadRequest(`tools[${i}].function_declarations must be a list.`);
      for (const [j, d] of decls.entries()) {
        const o = obj(d, `tools[${i}].function_declarations[${j}]`);
        if (typeof o.name !== 'string' || !GEMINI_TOOL_NAME.test(o.name))
          throw new BadRequest(
            `* GenerateContentRequest.tools[${i}].function_declarations[${j}].name: Invalid function name. Must start with a letter or an underscore. Must be alphameric (a-z, A-Z, 0-9), underscores (_), dots (.) or dashes (-), with a maximum length of 64.`,
          );
        const schema = o.parametersJsonSchema ?? o.parameters;
        const parameters = schema === undefined ? { type: 'object', properties: {} } : obj(schema, 'parameters');
        // Its JSON Schema must describe an object (the OpenAPI form names the type OBJECT).
        if (String(parameters.type).toLowerCase() !== 'object')
          throw new BadRequest(
            `* GenerateContentRequest.tools[${i}].function_declarations[${j}].parameters: the schema must describe an object whose properties are the function's parameters`,
          );
        tools.push({ name: o.name, parameters });
      }
    }
  }
  let choice: SimToolChoice = 'auto';
  const fc = b.toolConfig === undefined ? undefined : obj(obj(b.toolConfig, 'toolConfig').functionCallingConfig ?? {}, 'functionCallingConfig');
  if (fc) {
    const names = Array.isArray(fc.allowedFunctionNames) ? fc.allowedFunctionNames.map(String) : [];
    if (fc.mode === 'NONE') choice = 'none';
    else if (fc.mode === 'ANY') choice = names.length === 1 ? { name: names[0] ?? '' } : 'required';
    else if (fc.mode !== undefined && fc.mode !== 'AUTO' && fc.mode !== 'MODE_UNSPECIFIED')
      throw new BadRequest(`Invalid value at 'tool_config.function_calling_config.mode' (${JSON.stringify(fc.mode)})`);
  }
  const turns: ToolTurn[] = [];
  let open: string[] = [];
  for (const [i, c] of contents.entries()) {
    const parts = Array.isArray(c.parts) ? c.parts.map((p, j) => obj(p, `contents[${i}].parts[${j}]`)) : [];
    const responses = parts.filter((p) => p.functionResponse !== undefined).map((p) => obj(p.functionResponse, 'functionResponse'));
    const calls = parts.filter((p) => p.functionCall !== undefined).map((p) => obj(p.functionCall, 'functionCall'));
    if (responses.length > 0) {
      if (open.length === 0) throw new BadRequest('Please ensure that function response turn comes immediately after a function call turn.');
      if (responses.length !== open.length)
        throw new BadRequest(
          'Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.',
        );
    } else if (open.length > 0 && c.role !== 'model')
      throw new BadRequest('Please ensure that function call turn comes immediately after a user turn or after a function response turn.');
    const text = parts
      .filter((p) => typeof p.text === 'string')
      .map((p) => String(p.text))
      .join('');
    if (c.role === 'model') {
      open = calls.map((x) => String(x.name));
      turns.push({ role: 'assistant', text: calls.length > 0 ? `${text} [calls ${open.join(', ')}]`.trim() : text });
    } else {
      open = [];
      turns.push({ role: 'user', text: [...responses.map((r) => resultText(String(r.name), r.response)), ...(text ? [text] : [])].join('\n') });
    }
  }
  const last = contents[contents.length - 1];
  const lastPart: unknown = Array.isArray(last?.parts) ? last.parts.at(-1) : undefined;
  const afterToolResult = typeof lastPart === 'object' && lastPart !== null && 'functionResponse' in lastPart;
  return { turns, toolText: tools.length > 0 ? JSON.stringify(b.tools) : '', ...(tools.length > 0 ? { tools: { tools, choice, afterToolResult } } : {}) };
}
