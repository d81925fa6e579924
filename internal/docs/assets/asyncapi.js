// Renders /asyncapi.yaml with the AsyncAPI component (sidebar of operations, messages and
// schemas); body[data-ready] marks the end.
const root = document.getElementById("reference");

// The component's sidebar links messages by their name (`#message-presence.snapshot`), its
// sections by their key in components.messages (`message-presenceSnapshot`); two of our
// messages share a name (`cursor`, `state`: one per direction). Both list the messages in
// the same order, so the links are pointed at the sections by position.
// The component renders in steps, so this runs again after every change of the tree.
function fixMessageLinks() {
  const links = [...root.querySelectorAll(".sidebar a[href^='#message-']")];
  const sections = [...root.querySelectorAll("[id^='message-']")].filter((e) => !e.id.endsWith("-payload"));
  if (links.length === 0 || links.length !== sections.length) return false;
  links.forEach((a, i) => { if (a.getAttribute("href") !== `#${sections[i].id}`) a.setAttribute("href", `#${sections[i].id}`); });
  return true;
}

function whenRendered(done) {
  let fired = false;
  const check = () => {
    if (fixMessageLinks() && !fired) {
      fired = true;
      done();
    }
  };
  new MutationObserver(check).observe(root, { childList: true, subtree: true });
  check();
}

fetch("/asyncapi.yaml")
  .then((r) => { if (!r.ok) throw new Error(`GET /asyncapi.yaml: ${r.status}`); return r.text(); })
  .then((schema) => {
    AsyncApiStandalone.render({
      schema,
      config: { show: { sidebar: true, errors: true }, sidebar: { showOperations: "byDefault" } },
    }, root);
    whenRendered(() => {
      if (location.hash) document.getElementById(decodeURIComponent(location.hash.slice(1)))?.scrollIntoView();
      document.body.dataset.ready = "true";
    });
  })
  .catch((e) => { document.body.dataset.ready = "error"; throw e; });
