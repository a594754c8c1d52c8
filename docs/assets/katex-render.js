/* Render the pages' mathematics with the bundled KaTeX: pymdownx.arithmatex (generic
   mode) leaves each formula between \( \) or \[ \] in an element of class "arithmatex". */
document$.subscribe(function () {
  for (const element of document.querySelectorAll(".arithmatex")) {
    renderMathInElement(element, {
      delimiters: [{ left: "\\[", right: "\\]", display: true },
                   { left: "\\(", right: "\\)", display: false }],
      throwOnError: false
    });
  }
});
