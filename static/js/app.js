// The few behaviours Pico and htmx leave to us: the nav's menu button on narrow screens, placing a
// row's Actions menu (a native popover, so no table or card can clip it) beside the button that opened it,
// and the template editor's preview while typing.
(function () {
  "use strict";

  // --- the nav collapses behind a Menu button (narrow screens; CSS decides when the button shows) ---
  const toggle = document.querySelector(".nav-toggle");
  const menu = document.getElementById("site-menu");
  if (toggle && menu) {
    document.documentElement.classList.add("nav-collapsible");
    toggle.hidden = false;
    const setOpen = (open) => {
      toggle.setAttribute("aria-expanded", String(open));
      menu.classList.toggle("open", open);
    };
    toggle.addEventListener("click", () => setOpen(toggle.getAttribute("aria-expanded") !== "true"));
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && toggle.getAttribute("aria-expanded") === "true") {
        setOpen(false);
        toggle.focus();
      }
    });
  }

  // --- the overview's period: typing a date means "From–to"; choosing a preset clears the dates ---
  document.querySelectorAll("[data-range-form]").forEach((form) => {
    const preset = form.querySelector("select[name=range]");
    const dates = form.querySelectorAll("input[type=date]");
    if (!preset) return;
    dates.forEach((input) => input.addEventListener("change", () => { preset.value = "custom"; }));
    preset.addEventListener("change", () => {
      if (preset.value !== "custom") dates.forEach((input) => { input.value = ""; });
    });
  });

  // --- row menus: popovers placed under (or above) their button, kept there while the page scrolls ---
  const invokerOf = (popover) => document.querySelector(`[popovertarget="${popover.id}"]`);

  function place(popover) {
    const invoker = invokerOf(popover);
    if (!invoker) return;
    const button = invoker.getBoundingClientRect();
    const width = popover.offsetWidth;
    const height = popover.offsetHeight;
    const gap = 4;
    let top = button.bottom + gap;
    if (top + height > window.innerHeight && button.top - gap - height >= 0) {
      top = button.top - gap - height; // no room below: open upwards
    }
    const left = Math.min(Math.max(8, button.right - width), window.innerWidth - width - 8);
    // CSSOM writes, not style attributes: the CSP forbids inline styles, not this.
    popover.style.top = `${Math.max(8, top)}px`;
    popover.style.left = `${Math.max(8, left)}px`;
  }

  document.addEventListener(
    "toggle",
    (event) => {
      if (event.target.classList && event.target.classList.contains("row-menu") && event.newState === "open") {
        place(event.target);
      }
    },
    true,
  );
  const replaceOpenMenus = () => document.querySelectorAll(".row-menu:popover-open").forEach(place);
  window.addEventListener("scroll", replaceOpenMenus, true);
  window.addEventListener("resize", replaceOpenMenus);

  // --- template editor: what is typed is posted, unsaved, into the sandboxed preview frame ---
  // A form submission targeting the frame (not srcdoc) so the preview gets the server's own sandbox CSP.
  const editor = document.querySelector("form[data-live-preview]");
  if (editor) {
    const sender = document.createElement("form");
    sender.method = "post";
    sender.action = editor.dataset.livePreview;
    sender.target = editor.dataset.previewFrame;
    sender.hidden = true;
    for (const name of ["csrfmiddlewaretoken", "code", "text"]) {
      const input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      sender.append(input);
    }
    document.body.append(sender);
    const value = (name) => (editor.elements[name] ? editor.elements[name].value : "");
    const refresh = () => {
      for (const input of sender.elements) input.value = value(input.name);
      sender.submit();
    };
    let timer;
    editor.addEventListener("input", (event) => {
      if (!["code", "text"].includes(event.target.name)) return;
      clearTimeout(timer);
      timer = setTimeout(refresh, 400);
    });
    if (!document.querySelector(`iframe[name="${editor.dataset.previewFrame}"]`).getAttribute("src") && (value("code") || value("text"))) {
      refresh(); // a new template re-shown with errors: preview what was typed
    }
  }
})();
