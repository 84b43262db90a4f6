// The sign-in code field: a pasted or typed code keeps its digits only (any script's
// digits are read as 0-9 by the server too), so "1234 5678" or "1234-5678" both work.
"use strict";
(function () {
  var input = document.querySelector("[data-code-input]");
  if (!input) {
    return;
  }
  input.addEventListener("paste", function (event) {
    var text = (event.clipboardData || window.clipboardData).getData("text") || "";
    var digits = text.replace(/[\s.\-\u2010-\u2015]/g, "");
    if (digits.length > 0 && digits.length <= 32) {
      event.preventDefault();
      input.value = digits;
    }
  });
  input.focus();
})();
