// Elements that stick out of the window: run by tests/browser.py's check_layout.
() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  if (document.documentElement.scrollWidth > width + 1) out.push("page scrolls sideways: " + document.documentElement.scrollWidth);
  for (const node of document.querySelectorAll("body *")) {
    const box = node.getBoundingClientRect();
    if (!box.width || !box.height || getComputedStyle(node).visibility === "hidden") continue;
    let inside = node.parentElement, clipped = false;
    while (inside && inside !== document.body) {
      const overflow = getComputedStyle(inside).overflowX;
      if (overflow === "auto" || overflow === "scroll" || overflow === "hidden") { clipped = true; break; }
      inside = inside.parentElement;
    }
    if (!clipped && box.right > width + 1) out.push(node.tagName.toLowerCase() + (node.id ? "#" + node.id : "") + (node.className && typeof node.className === "string" ? "." + node.className.split(" ").join(".") : "") + " ends at " + Math.round(box.right));
  }
  return out.slice(0, 10);
}
