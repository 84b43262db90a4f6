// GraphiQL for customer-vault (development mode). Started from this file, not from an
// inline script, so the page's Content-Security-Policy needs no 'unsafe-inline'. Unlike
// strawberry's page the query is not written into the URL: it may hold personal data.
"use strict";
(function () {
  var EXAMPLE = [
    "# customer-vault GraphQL. Every request needs two headers (Headers tab below):",
    '#   {"Authorization": "Bearer <token>", "X-Purpose": "support"}',
    "# Mint a development token: cvault token issue --role support_agent --sub agent-1",
    "",
    "{ customers(first: 5) { edges { node { id firstName email } } } }",
    "",
  ].join("\n");
  var fetcher = GraphiQL.createFetcher({ url: window.location.pathname });
  var explorer = GraphiQLPluginExplorer.explorerPlugin();
  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: EXAMPLE,
      defaultEditorToolsVisibility: true,
      plugins: [explorer],
      inputValueDeprecation: true,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: true,
    })
  );
})();
