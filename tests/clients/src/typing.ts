/**
 * What the generated types refuse, checked by the compiler: each line under a
 * `@ts-expect-error` must fail to type-check, or `tsc` fails the build ("Unused
 * '@ts-expect-error' directive"). So a schema or codegen change that loosened the types
 * (an `any` scalar, an unmasked fragment, a selection no longer checked) breaks here.
 * Nothing runs this module.
 */
import type { ResultOf, VariablesOf } from "@graphql-typed-document-node/core";

import type { ConsentChangeInput, InteractionInput } from "./gql/graphql.js";
import type { CustomerProfile, CustomersPage, Me } from "./operations.js";

function accept<T>(_value: T): void {}

export function refusedByTheTypes(
  page: ResultOf<typeof CustomersPage>,
  profile: ResultOf<typeof CustomerProfile>,
  me: ResultOf<typeof Me>,
): void {
  const node = page.customers.edges[0]?.node;
  // @ts-expect-error a field the query does not select is not on its result
  accept(node?.phone);
  // @ts-expect-error the fragment's fields are masked: read them with getFragmentData
  accept(node?.firstName);
  // @ts-expect-error a PII field may be hidden by the policy: it is nullable
  accept<string>(profile.customer.email);
  // @ts-expect-error the timeline of a customer may be hidden: it is nullable
  accept(profile.customer.interactions.edges);
  // @ts-expect-error Decimal is a string on the wire, never a number
  accept<number | null>(profile.customer.interactions?.edges[0]?.node.amount ?? null);
  // @ts-expect-error `first` is Int!: a page without it is refused
  accept<VariablesOf<typeof CustomersPage>>({ after: null });
  // @ts-expect-error Me takes no variables
  accept<VariablesOf<typeof Me>>({ id: "someone" });
  // @ts-expect-error an interaction type outside the schema's enum
  accept<InteractionInput["type"]>("TELEPATHY");
  // @ts-expect-error a consent channel outside the schema's enum
  accept<ConsentChangeInput["sourceChannel"]>("CARRIER_PIGEON");
  // @ts-expect-error consents are nullable (hidden for callers who may not read them)
  accept(me.me.consents.length);
}
