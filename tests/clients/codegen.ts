/**
 * GraphQL Code Generator: the client preset over src/, typed against the schema a live
 * `cvault serve` introspects (CVAULT_SCHEMA_URL with a bearer token and a purpose), or
 * the committed ../../schema.graphql when no URL is given. It writes src/gql/ (typed
 * documents, each carrying its SHA-256 document id), src/gql/persisted-documents.json
 * (the manifest `cvault documents register` takes) and generated/schema.graphql (the
 * schema it compiled against, compared with the committed one by the pytest wrapper).
 */
import type { CodegenConfig } from "@graphql-codegen/cli";
import { addTypenameSelectionDocumentTransform } from "@graphql-codegen/client-preset";

const url = process.env.CVAULT_SCHEMA_URL;
const schema: CodegenConfig["schema"] = url
  ? {
      [url]: {
        headers: {
          Authorization: `Bearer ${process.env.CVAULT_SCHEMA_TOKEN ?? ""}`,
          "X-Purpose": process.env.CVAULT_SCHEMA_PURPOSE ?? "support",
        },
        // Ask introspection for all it can tell, so that the schema compiled against
        // prints as the committed SDL does.
        specifiedByUrl: true,
        inputValueDeprecation: true,
        oneOf: true,
      },
    }
  : "../../schema.graphql";

const config: CodegenConfig = {
  schema,
  documents: ["src/**/*.ts", "!src/gql/**/*"],
  ignoreNoDocuments: false,
  generates: {
    "src/gql/": {
      preset: "client",
      presetConfig: {
        persistedDocuments: { hashAlgorithm: "sha256" },
        fragmentMasking: { unmaskFunctionName: "getFragmentData" },
      },
      // urql's and Apollo's caches add __typename to every selection set before sending;
      // adding it here makes the registered text the text those clients run.
      documentTransforms: [addTypenameSelectionDocumentTransform],
      config: {
        strictScalars: true,
        scalars: { DateTime: "string", Decimal: "string", JSON: "unknown" },
        enumsAsTypes: true,
        useTypeImports: true,
        importExtension: ".js",
      },
    },
    "generated/schema.graphql": { plugins: ["schema-ast"] },
  },
};

export default config;
