// Calls a running `kiln serve` with the official OpenAI Node SDK: tool calls (required, streamed
// and not) and JSON-schema output, checking each answer's shape (see openai_sdk_check.py).
//
//   KILN_OPENAI_NODE_MODULE=.../node_modules/openai node openai_sdk_check.mjs BASE_URL MODEL
//
// Prints one line per check and exits 0 when all pass, 1 at the first that fails.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const OpenAI = require(process.env.KILN_OPENAI_NODE_MODULE || "openai");
const [baseUrl, model] = process.argv.slice(2);

const weather = {
  type: "object",
  properties: { city: { type: "string", maxLength: 8 }, unit: { enum: ["c", "f"] } },
  required: ["city", "unit"],
  additionalProperties: false,
};
const tools = [{ type: "function", function: { name: "get_weather", description: "Current weather", parameters: weather } }];
const answer = {
  type: "object",
  properties: { answer: { type: "string", maxLength: 12 }, score: { type: "integer" } },
  required: ["answer", "score"],
  additionalProperties: false,
};
const messages = [{ role: "user", content: "Weather in Paris?" }];

function check(condition, what) {
  if (!condition) {
    console.log("FAIL " + what);
    process.exit(1);
  }
  console.log("ok   " + what);
}

function checkWeather(args) {
  const v = JSON.parse(args);
  check(Object.keys(v).sort().join() === "city,unit" && typeof v.city === "string" && v.city.length <= 8
    && ["c", "f"].includes(v.unit), "get_weather arguments fit their schema: " + args);
}

const client = new (OpenAI.default || OpenAI)({ baseURL: baseUrl + "/v1", apiKey: "unused", maxRetries: 0 });

const r = await client.chat.completions.create({ model, messages, tools, tool_choice: "required", max_tokens: 120, seed: 7 });
check(r.choices[0].finish_reason === "tool_calls", "tool_choice required: finish_reason tool_calls");
const call = r.choices[0].message.tool_calls[0];
check(call.function.name === "get_weather" && call.id, "the call names the tool");
checkWeather(call.function.arguments);

let args = "";
let finish = null;
const stream = await client.chat.completions.create({ model, messages, tools, tool_choice: "required", max_tokens: 120, seed: 11, stream: true });
for await (const chunk of stream) {
  const choice = chunk.choices[0];
  if (!choice) continue;
  for (const part of choice.delta.tool_calls || []) args += part.function?.arguments || "";
  finish = choice.finish_reason || finish;
}
check(finish === "tool_calls", "a streamed call, finish_reason tool_calls");
checkWeather(args);

const out = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: "Rate Paris." }],
  response_format: { type: "json_schema", json_schema: { name: "answer", strict: true, schema: answer } },
  max_tokens: 200,
  seed: 5,
});
const v = JSON.parse(out.choices[0].message.content);
check(Object.keys(v).sort().join() === "answer,score" && typeof v.answer === "string" && Number.isInteger(v.score),
  "the JSON output fits its schema: " + out.choices[0].message.content);
console.log("all checks passed");
