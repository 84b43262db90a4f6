/**
 * Runs the scenario with one client and one way of sending, against the server at
 * CVAULT_URL, and prints one JSON line: the summary and how each request was sent.
 *
 *   CVAULT_CLIENT=fetch|urql  CVAULT_SEND=text|documents  CVAULT_RUN=<label>
 *   CVAULT_TOKEN_SUPPORT, CVAULT_TOKEN_INGEST, CVAULT_TOKEN_SUBJECT: bearer tokens
 */
import { fetchTransport } from "./fetchClient.js";
import { runScenario } from "./scenario.js";
import { type Callers, GraphQLRequestError, type Send, type SentRequest, recordingFetch } from "./transport.js";
import { urqlTransport } from "./urqlClient.js";

function required(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === "") {
    throw new Error(`${name} is not set`);
  }
  return value;
}

function sendOf(value: string): Send {
  if (value !== "text" && value !== "documents") {
    throw new Error(`CVAULT_SEND must be text or documents, not ${value}`);
  }
  return value;
}

async function main(): Promise<void> {
  const url = `${required("CVAULT_URL")}/graphql`;
  const send = sendOf(required("CVAULT_SEND"));
  const callers: Callers = {
    support: { token: required("CVAULT_TOKEN_SUPPORT"), purpose: "support" },
    ingest: { token: required("CVAULT_TOKEN_INGEST"), purpose: "service_delivery" },
    subject: { token: required("CVAULT_TOKEN_SUBJECT"), purpose: "self" },
  };
  const requests: SentRequest[] = [];
  const fetchImpl = recordingFetch(requests);
  const name = required("CVAULT_CLIENT");
  const client =
    name === "urql"
      ? urqlTransport(url, callers, send, fetchImpl)
      : name === "fetch"
        ? fetchTransport(url, callers, send, fetchImpl)
        : undefined;
  if (client === undefined) {
    throw new Error(`CVAULT_CLIENT must be fetch or urql, not ${name}`);
  }
  const summary = await runScenario(client, required("CVAULT_RUN"));
  process.stdout.write(`${JSON.stringify({ client: client.name, send, summary, requests })}\n`);
}

main().catch((error: unknown) => {
  const detail = error instanceof GraphQLRequestError ? ` ${JSON.stringify(error.errors)}` : "";
  process.stderr.write(`${error instanceof Error ? error.stack ?? error.message : String(error)}${detail}\n`);
  process.exitCode = 1;
});
