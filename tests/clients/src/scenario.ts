/**
 * One scenario, run by every client in both ways of sending: a support agent pages
 * through customers and opens a profile, an ingest service creates customers named in
 * Persian and Thai and records a purchase (twice: kept once), and a data subject reads
 * its own record and changes a consent. Every answer is checked here against its shape;
 * the summary goes to the pytest wrapper, which checks the values.
 */
import assert from "node:assert/strict";

import { getFragmentData } from "./gql/index.js";
import {
  CreateCustomer,
  CustomerNameFields,
  CustomerProfile,
  CustomersPage,
  GrantConsent,
  Me,
  RecordInteractions,
  WithdrawConsent,
} from "./operations.js";
import type { CustomerInput, InteractionInput } from "./gql/graphql.js";
import type { GraphQLTransport } from "./transport.js";

export interface Names {
  firstName: string | null;
  lastName: string | null;
}

export interface Summary {
  pages: { first: number; second: number; overlap: number; hasNextPage: boolean };
  created: { sent: Names; read: Names; status: string; emailShown: "clear" | "masked" }[];
  recorded: { inserted: number; duplicates: number }[];
  timeline: { type: string; channel: string; amount: string | null; currency: string | null }[];
  me: { emailShown: "clear" | "masked"; consent: string[] };
}

const PERSIAN: Names = { firstName: "نیلوفر", lastName: "محمدی\u200cپور" };
const THAI: Names = { firstName: "สมศรี", lastName: "ใจดี" };
const PAGE = 5;
const PURPOSE = "marketing_email";

function shown(value: string | null, sent: string): "clear" | "masked" {
  assert.ok(value !== null, "a hidden value where a masked or clear one was expected");
  return value === sent ? "clear" : "masked";
}

async function pages(client: GraphQLTransport): Promise<Summary["pages"]> {
  const first = await client.execute("support", CustomersPage, { first: PAGE });
  const { endCursor, hasNextPage } = first.customers.pageInfo;
  assert.equal(first.customers.edges.length, PAGE);
  assert.ok(endCursor !== null && hasNextPage);
  const second = await client.execute("support", CustomersPage, { first: PAGE, after: endCursor });
  const ids = (page: typeof first) =>
    page.customers.edges.map((edge) => getFragmentData(CustomerNameFields, edge.node).id);
  const seen = new Set(ids(first));
  return {
    first: seen.size,
    second: ids(second).length,
    overlap: ids(second).filter((id) => seen.has(id)).length,
    hasNextPage,
  };
}

async function createAndRead(
  client: GraphQLTransport,
  names: Names,
  email: string,
  locale: string,
): Promise<{ id: string; summary: Summary["created"][number] }> {
  const input: CustomerInput = { ...names, email, locale, tags: ["typed-client"] };
  const created = await client.execute("ingest", CreateCustomer, { input });
  const id = created.createCustomer?.id;
  assert.ok(id !== undefined, "createCustomer answers with the new customer's id");
  const profile = await client.execute("support", CustomerProfile, { id, interactions: 5 });
  const read = getFragmentData(CustomerNameFields, profile.customer);
  assert.equal(read.id, id, "the profile answers for the id the mutation returned");
  return {
    id,
    summary: {
      sent: names,
      read: { firstName: read.firstName, lastName: read.lastName },
      status: profile.customer.status,
      emailShown: shown(profile.customer.email, email),
    },
  };
}

async function purchase(client: GraphQLTransport, customerId: string, run: string) {
  const interactions: InteractionInput[] = [
    {
      customerId,
      channel: "WEB",
      type: "PURCHASE",
      occurredAt: "2026-11-20T10:15:00+00:00",
      amount: "42.50",
      currency: "EUR",
      externalId: `typed-client-${run}-1`,
      payload: { basket: ["tea", "چای", "ชา"] },
    },
  ];
  const recorded: Summary["recorded"] = [];
  for (let attempt = 0; attempt < 2; attempt++) {
    const result = await client.execute("ingest", RecordInteractions, { interactions });
    assert.ok(result.recordInteractions !== null);
    const { inserted, duplicates } = result.recordInteractions;
    recorded.push({ inserted, duplicates });
  }
  // Read again from the server: a client's document cache (urql's) keeps the profile it
  // read before, as recordInteractions answers with no Customer to invalidate it by.
  const profile = await client.execute(
    "support",
    CustomerProfile,
    { id: customerId, interactions: 5 },
    { fresh: true },
  );
  const timeline = profile.customer.interactions?.edges ?? [];
  const summary = timeline.map(({ node }) => ({
    type: node.type,
    channel: node.channel,
    amount: node.amount,
    currency: node.currency,
  }));
  return { recorded, timeline: summary };
}

async function subject(client: GraphQLTransport): Promise<Summary["me"]> {
  const before = await client.execute("subject", Me, {});
  const me = getFragmentData(CustomerNameFields, before.me);
  assert.ok(before.me.email !== null, "a data subject reads its own e-mail address");
  const states: string[] = [];
  const granted = await client.execute("subject", GrantConsent, {
    customerId: me.id,
    purpose: PURPOSE,
    how: { sourceChannel: "WEB", noticeVersion: "2026-12", method: "CHECKBOX" },
  });
  states.push(granted.grantConsent?.state ?? "none");
  const withdrawn = await client.execute("subject", WithdrawConsent, {
    customerId: me.id,
    purpose: PURPOSE,
  });
  states.push(withdrawn.withdrawConsent?.state ?? "none");
  const after = await client.execute("subject", Me, {}, { fresh: true });
  const consent = after.me.consents?.find((c) => c.purpose === PURPOSE);
  assert.ok(consent !== undefined, `${PURPOSE} is among the consents`);
  states.push(`${consent.state ?? "none"}:${consent.effective ? "effective" : "not effective"}`);
  return { emailShown: before.me.email.includes("*") ? "masked" : "clear", consent: states };
}

export async function runScenario(client: GraphQLTransport, run: string): Promise<Summary> {
  const paged = await pages(client);
  const persian = await createAndRead(client, PERSIAN, `niloufar.${run}@example.org`, "fa-IR");
  const thai = await createAndRead(client, THAI, `somsri.${run}@example.org`, "th-TH");
  const { recorded, timeline } = await purchase(client, persian.id, run);
  return {
    pages: paged,
    created: [persian.summary, thai.summary],
    recorded,
    timeline,
    me: await subject(client),
  };
}
