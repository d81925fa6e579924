// The page the React bindings are tested with in Chromium (internal/e2e
// TestReactBindingsInChromium bundles it with esbuild): one PresenceProvider in StrictMode
// for the user in the URL fragment, every hook's value printed as JSON in #out, and the
// actions the driver calls on window.act.
import { StrictMode, useRef, useState } from "react";
import { createRoot } from "react-dom/client";
import {
  PresenceProvider, useConnectionState, useCursors, useHands, useMyState, useOthers, usePresenceSocket, useSpotlight,
} from "@m4sh/client/react";

type Me = { color: string };
const q = new URLSearchParams(location.hash.slice(1));
const param = (k: string) => q.get(k) ?? "";
const renders = { others: 0, cursors: 0 };
(window as unknown as { renders: typeof renders }).renders = renders;

function Others() {
  const others = useOthers<Me>();
  renders.others++;
  return <pre id="others">{JSON.stringify(others)}</pre>;
}

function Cursors() {
  const cursors = useCursors<Me>();
  renders.cursors++;
  return <pre id="cursors">{JSON.stringify(cursors)}</pre>;
}

function Panel() {
  const status = useConnectionState();
  const [me, setMe] = useMyState<Me>();
  const hands = useHands();
  const spotlight = useSpotlight();
  const ps = usePresenceSocket<Me>();
  const act = useRef({});
  act.current = {
    setColor: (color: string) => setMe({ color }),
    cursor: (x: number, y: number) => ps?.sendCursor(x, y),
    raise: () => ps?.raiseHand(),
    spotlight: (on: boolean) => ps?.spotlight(on),
    viewport: (x: number, y: number, w: number, h: number) => ps?.sendViewport({ x, y, w, h }),
  };
  (window as unknown as { act: unknown }).act = act.current;
  return (
    <>
      <pre id="status">{status}</pre>
      <pre id="me">{JSON.stringify(me ?? null)}</pre>
      <pre id="hands">{JSON.stringify(hands.map((h) => h.user_id))}</pre>
      <pre id="spotlight">{JSON.stringify(spotlight ?? null)}</pre>
      <Others />
      <Cursors />
    </>
  );
}

function App() {
  const [mounted, setMounted] = useState(true);
  const [session, setSession] = useState(param("session"));
  const w = window as unknown as { unmount: () => void; switchSession: (id: string) => void };
  w.unmount = () => setMounted(false);
  w.switchSession = setSession;
  if (!mounted) return <pre id="status">unmounted</pre>;
  return (
    <PresenceProvider<Me> classId={param("class")} sessionId={session} userId={param("user")}
      getToken={() => param("token")} initialState={{ color: param("color") }}>
      <Panel />
    </PresenceProvider>
  );
}

createRoot(document.getElementById("root")!).render(<StrictMode><App /></StrictMode>);
