"""The typed client project (TypeScript, GraphQL Code Generator, urql) and the test
that builds it and runs it against a live server."""
