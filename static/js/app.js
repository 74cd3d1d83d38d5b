// The few behaviours Pico and htmx leave to us: the nav's menu button on narrow screens, and placing a
// row's Actions menu (a native popover, so no table or card can clip it) beside the button that opened it.
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
})();
