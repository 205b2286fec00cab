/**
 * An in-process gRPC server (connect-node's handler on node:http2) whose handlers each test
 * scripts: it stands in for the featurestore server only to produce the answers, statuses and
 * failures the client must handle.
 */
import * as http2 from "node:http2";
import type { Socket } from "node:net";
import type { AddressInfo } from "node:net";

import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";

export interface TestServer {
  /** "127.0.0.1:port". */
  readonly address: string;
  /**
   * Drops every client connection as a server process that dies does: `"close"` ends the TCP
   * connections, `"reset"` resets them.
   */
  drop(how: "close" | "reset"): void;
  /** Stops listening and drops every connection. */
  close(): Promise<void>;
}

/**
 * Serves the routes on 127.0.0.1 (a free port, or `port`: a server restarted on the address of
 * one closed), over TLS when `tls` is given.
 */
export async function serve(
  routes: (router: ConnectRouter) => void,
  tls?: { key: Buffer; cert: Buffer },
  port = 0,
): Promise<TestServer> {
  const handler = connectNodeAdapter({ routes });
  const server = tls ? http2.createSecureServer(tls, handler) : http2.createServer(handler);
  const sockets = new Set<Socket>();
  server.on(tls ? "secureConnection" : "connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  const listening = (server.address() as AddressInfo).port;
  const drop = (how: "close" | "reset") => {
    for (const socket of sockets) {
      if (how === "reset") {
        socket.resetAndDestroy();
      } else {
        socket.destroy();
      }
    }
  };
  return {
    address: `127.0.0.1:${listening}`,
    drop,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        drop("close");
      }),
  };
}

/** Resolves after `ms`. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Resolves when `signal` aborts. */
export function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
    }
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
}
