/**
 * The smallest typed client: `fetch` and the client preset's typed documents. As text,
 * every operation is a POST of its printed document. As trusted documents, only the id
 * the preset embedded travels: queries as `GET ?documentId=`, mutations as a POST of
 * `{documentId, variables, operationName}`, which is what Relay's network layer sends too.
 */
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { print } from "graphql";

import {
  type Caller,
  type Callers,
  type GatewayError,
  GraphQLRequestError,
  type GraphQLTransport,
  type Send,
  documentIdOf,
  operationName,
  operationOf,
} from "./transport.js";

interface Answer {
  data?: unknown;
  errors?: GatewayError[];
}

export function fetchTransport(
  url: string,
  callers: Callers,
  send: Send,
  fetchImpl: typeof fetch,
): GraphQLTransport {
  async function execute<TResult, TVariables extends Record<string, unknown>>(
    caller: Caller,
    document: TypedDocumentNode<TResult, TVariables>,
    variables: TVariables,
  ): Promise<TResult> {
    const { token, purpose } = callers[caller];
    const name = operationName(document);
    const headers: Record<string, string> = {
      Authorization: `Bearer ${token}`,
      "X-Purpose": purpose,
      Accept: "application/json",
    };
    let response: Response;
    if (send === "documents" && operationOf(document).operation === "query") {
      const params = new URLSearchParams({
        documentId: documentIdOf(document),
        variables: JSON.stringify(variables),
        operationName: name,
      });
      response = await fetchImpl(`${url}?${params.toString()}`, { method: "GET", headers });
    } else {
      const named =
        send === "documents" ? { documentId: documentIdOf(document) } : { query: print(document) };
      response = await fetchImpl(url, {
        method: "POST",
        headers: { ...headers, "Content-Type": "application/json" },
        body: JSON.stringify({ ...named, variables, operationName: name }),
      });
    }
    const answer = (await response.json()) as Answer;
    if (!response.ok || answer.errors !== undefined || answer.data == null) {
      throw new GraphQLRequestError(name, response.status, answer.errors ?? []);
    }
    return answer.data as TResult;
  }

  return { name: "fetch", execute };
}
