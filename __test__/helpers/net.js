// Test harness helpers shared by the local servers (moto.js, postgres.js).
import { createServer } from 'node:net';

/** A port on 127.0.0.1 that was free a moment ago (callers retry on another one if it was taken since). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
