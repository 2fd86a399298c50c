// What a broken layout looks like, for tests/browser.py's check_layout: the page scrolling
// sideways, or an element running past the right edge of the window or of the box it sits in
// (a panel, a page section, the main area): a table too wide for its half of the page, a
// button cut off. A box that scrolls or clips on its own (overflow) is allowed its content.
() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  if (document.documentElement.scrollWidth > width + 1) out.push("page scrolls sideways: " + document.documentElement.scrollWidth);
  const name = function (node) {
    return node.tagName.toLowerCase() + (node.id ? "#" + node.id : "") +
      (node.className && typeof node.className === "string" ? "." + node.className.trim().split(/\s+/).join(".") : "");
  };
  const FRAMES = "main, section, article, fieldset, form, .panel, .pop";
  for (const node of document.querySelectorAll("body *")) {
    const box = node.getBoundingClientRect();
    const style = getComputedStyle(node);
    if (!box.width || !box.height || style.visibility === "hidden" || style.position === "fixed") continue;
    let inside = node.parentElement, clipped = false, frame = null;
    while (inside && inside !== document.body) {
      const overflow = getComputedStyle(inside).overflowX;
      if (overflow === "auto" || overflow === "scroll" || overflow === "hidden" || overflow === "clip") { clipped = true; break; }
      if (!frame && inside.matches(FRAMES)) frame = inside;
      inside = inside.parentElement;
    }
    if (clipped) continue;
    if (box.right > width + 1) { out.push(name(node) + " ends at " + Math.round(box.right) + ", past the window"); continue; }
    if (frame && style.position !== "absolute") {
      const edge = frame.getBoundingClientRect().right;
      if (box.right > edge + 1) out.push(name(node) + " ends at " + Math.round(box.right) + ", past its " + name(frame) + " at " + Math.round(edge));
    }
  }
  return out.slice(0, 10);
}
