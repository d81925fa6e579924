// Snapshot history, its own section of the demo: the solo session's revisions (newest
// first) with what each stored, pins with labels and restore, through the TypeScript
// package's snapshot helpers (gen/ts/src/snapshots.ts).
import { listSnapshots, pinSnapshot, unpinSnapshot, restoreSnapshot } from "./lib/m4sh/index.js";

const $ = (id) => document.getElementById(id);

function say(text, error = false) {
  const el = $("history-status");
  el.textContent = text;
  el.classList.toggle("error", error);
}

function kib(n) {
  return n < 1024 ? `${n} B` : `${(n / 1024).toFixed(1)} KiB`;
}

/**
 * Wires the history section. soloSession() gives the demo's solo session id; loadLatest()
 * puts the newest revision into the editor after a restore; act(fn) runs an action and
 * shows its failure in the page's error banner.
 */
export function setupHistory({ api, soloSession, loadLatest, act }) {
  function button(text, cls, onClick) {
    const b = document.createElement("button");
    b.textContent = text;
    b.className = cls;
    b.addEventListener("click", () => act(onClick));
    return b;
  }

  async function refresh() {
    const session_id = await soloSession();
    const revs = await listSnapshots(api, session_id);
    $("history").replaceChildren(...revs.map((r) => {
      const tr = document.createElement("tr");
      tr.dataset.revision = String(r.revision);
      tr.dataset.pinned = String(r.pinned);
      const cells = [
        `#${r.revision}`,
        kib(r.size_bytes),
        kib(r.stored_bytes),
        r.restored_from ? `restored from #${r.restored_from}` : "",
        r.pinned ? `📌 ${r.label ?? ""}` : "",
      ].map((t) => {
        const td = document.createElement("td");
        td.textContent = t;
        return td;
      });
      const actions = document.createElement("td");
      actions.append(
        r.pinned
          ? button("Unpin", "unpin", async () => { await unpinSnapshot(api, session_id, r.revision); await refresh(); say(`unpinned #${r.revision}`); })
          : button("Pin", "pin", async () => {
            const label = $("pin-label").value.trim();
            await pinSnapshot(api, session_id, r.revision, label || undefined);
            await refresh();
            say(`pinned #${r.revision}${label ? ` as "${label}"` : ""}`);
          }),
        button("Restore", "restore", async () => {
          const res = await restoreSnapshot(api, session_id, r.revision);
          await refresh();
          await loadLatest();
          say(res.created
            ? `restored #${r.revision} as revision ${res.revision.revision} (stored ${res.revision.stored_bytes} bytes more)`
            : `revision ${res.revision.revision} already has that content`);
        }),
      );
      tr.append(...cells, actions);
      return tr;
    }));
    say(`${revs.length} revision(s); pinned ones survive retention`);
  }

  $("refresh-history").addEventListener("click", () => act(refresh));
  return { refresh: () => act(refresh) };
}
