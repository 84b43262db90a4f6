/**
 * The operations the clients run, written as a frontend team would: one `graphql()` call
 * per document, a fragment colocated with what renders it. GraphQL Code Generator reads
 * these strings, types them against the live schema, and writes each document's id into
 * `persisted-documents.json`.
 *
 * Ids are read from a response and passed back unchanged (`customer(id:)`,
 * `customerId:` of an interaction or a consent): the client never builds or parses one.
 */
import { graphql } from "./gql/index.js";

export const CustomerNameFields = graphql(`
  fragment CustomerNameFields on Customer {
    id
    firstName
    lastName
  }
`);

export const CustomersPage = graphql(`
  query CustomersPage($first: Int!, $after: String) {
    customers(first: $first, after: $after) {
      edges {
        cursor
        node {
          ...CustomerNameFields
          email
          status
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

export const CustomerProfile = graphql(`
  query CustomerProfile($id: ID!, $interactions: Int!) {
    customer(id: $id) {
      ...CustomerNameFields
      email
      phone
      birthDate
      locale
      tags
      status
      interactions(first: $interactions) {
        edges {
          node {
            id
            channel
            type
            occurredAt
            amount
            currency
            externalId
          }
        }
        pageInfo {
          hasNextPage
        }
      }
    }
  }
`);

export const CreateCustomer = graphql(`
  mutation CreateCustomer($input: CustomerInput!) {
    createCustomer(input: $input) {
      id
      status
      createdAt
    }
  }
`);

export const RecordInteractions = graphql(`
  mutation RecordInteractions($interactions: [InteractionInput!]!) {
    recordInteractions(interactions: $interactions) {
      inserted
      duplicates
    }
  }
`);

export const Me = graphql(`
  query Me {
    me {
      ...CustomerNameFields
      email
      consents {
        purpose
        state
        effective
      }
    }
  }
`);

export const GrantConsent = graphql(`
  mutation GrantConsent($customerId: ID!, $purpose: String!, $how: ConsentChangeInput) {
    grantConsent(customerId: $customerId, purpose: $purpose, how: $how) {
      id
      purpose
      state
      method
      sourceChannel
    }
  }
`);

export const WithdrawConsent = graphql(`
  mutation WithdrawConsent($customerId: ID!, $purpose: String!) {
    withdrawConsent(customerId: $customerId, purpose: $purpose) {
      id
      purpose
      state
    }
  }
`);
