// Copy buttons: a button with data-copy="<id>" copies the text of the element with that id. The buttons
// stay hidden without this script (nothing to press that does nothing); loaded as a file, as the CSP asks.
(function () {
  "use strict";

  function reveal(root) {
    root.querySelectorAll("button[data-copy]").forEach((button) => {
      button.hidden = false;
    });
  }

  async function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return;
    }
    // Plain http (a local set-up): the older way, through a selection.
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "copy-buffer";
    document.body.appendChild(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-copy]");
    if (!button) return;
    const source = document.getElementById(button.dataset.copy);
    if (!source) return;
    const label = button.textContent;
    try {
      await copy(source.textContent.trim());
      button.textContent = "Copied";
    } catch (error) {
      button.textContent = "Select and copy";
    }
    setTimeout(() => {
      button.textContent = label;
    }, 2000);
  });

  document.addEventListener("DOMContentLoaded", () => reveal(document));
  // a domain's card comes back from htmx after Verify or Rotate: its buttons show too
  document.addEventListener("htmx:afterSwap", () => reveal(document));
})();
