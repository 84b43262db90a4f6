/**
 * urql (@urql/core) as an application sets it up: `cacheExchange` and `fetchExchange`,
 * with urql's defaults, under which queries go out as GET when the URL stays within
 * 2048 characters (`preferGetMethod: "within-url-limit"`). As trusted documents,
 * `persistedExchange` sends the client preset's ids instead of the text
 * (`enforcePersistedQueries`: no fallback to the text; `enableForMutation`: mutations
 * too), as Apollo's `extensions.persistedQuery.sha256Hash`; queries stay on GET.
 */
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { Client, type Exchange, cacheExchange, fetchExchange } from "@urql/core";
import { persistedExchange } from "@urql/exchange-persisted";

import {
  type Caller,
  type Callers,
  type ExecuteOptions,
  GraphQLRequestError,
  type GraphQLTransport,
  type GatewayError,
  type Send,
  documentIdOf,
  operationName,
  operationOf,
} from "./transport.js";

const SHA256 = "sha256:";

/** The bare hex Apollo's extension carries, from the preset's `sha256:<hex>` id. */
function sha256Hex(document: TypedDocumentNode<unknown, never>): string {
  const id = documentIdOf(document);
  if (!id.startsWith(SHA256)) {
    throw new Error(`${operationName(document)}: the persisted exchange needs a SHA-256 id`);
  }
  return id.slice(SHA256.length);
}

function exchanges(send: Send): Exchange[] {
  if (send === "text") {
    return [cacheExchange, fetchExchange];
  }
  const persisted = persistedExchange({
    enforcePersistedQueries: true,
    enableForMutation: true,
    generateHash: async (_query, document) => sha256Hex(document),
  });
  return [cacheExchange, persisted, fetchExchange];
}

export function urqlTransport(
  url: string,
  callers: Callers,
  send: Send,
  fetchImpl: typeof fetch,
): GraphQLTransport {
  // One client per caller, as one per signed-in session in an application.
  const clients = new Map<Caller, Client>();
  function clientFor(caller: Caller): Client {
    let client = clients.get(caller);
    if (client === undefined) {
      const { token, purpose } = callers[caller];
      client = new Client({
        url,
        exchanges: exchanges(send),
        fetch: fetchImpl,
        fetchOptions: { headers: { Authorization: `Bearer ${token}`, "X-Purpose": purpose } },
      });
      clients.set(caller, client);
    }
    return client;
  }

  async function execute<TResult, TVariables extends Record<string, unknown>>(
    caller: Caller,
    document: TypedDocumentNode<TResult, TVariables>,
    variables: TVariables,
    options?: ExecuteOptions,
  ): Promise<TResult> {
    const client = clientFor(caller);
    const context = options?.fresh ? { requestPolicy: "network-only" as const } : {};
    const pending =
      operationOf(document).operation === "mutation"
        ? client.mutation(document, variables, context)
        : client.query(document, variables, context);
    const result = await pending.toPromise();
    if (result.error !== undefined || result.data === undefined) {
      const errors: GatewayError[] = (result.error?.graphQLErrors ?? []).map((e) => ({
        message: e.message,
        extensions: { code: String(e.extensions.code ?? "") },
      }));
      const status = result.error?.response?.status ?? 0;
      throw new GraphQLRequestError(operationName(document), Number(status), errors);
    }
    return result.data;
  }

  return { name: "urql", execute };
}
