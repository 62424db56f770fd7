/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// During development the API is a running `porthole serve` (PORTHOLE_URL); in production
// the binary serves these assets itself, so every request is same-origin.
const target = process.env.PORTHOLE_URL ?? "http://127.0.0.1:8080";
const proxy = { "/api": { target, changeOrigin: true } };

export default defineConfig({
  plugins: [react()],
  server: { proxy },
  preview: { proxy },
  test: { include: ["src/**/*.test.ts"] },
});
