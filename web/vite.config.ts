// The dashboard is served by the playhead binary at `/`, from files embedded
// at build time (crates/server/build.rs). Hashed names under assets/ let the
// server cache them forever.
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/',
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    emptyOutDir: true,
    // ECharts is most of the bundle even tree-shaken; one chunk is fine here.
    chunkSizeWarningLimit: 1200,
  },
  server: {
    // `npm run dev` against a running `playhead demo`.
    proxy: { '/data': 'http://127.0.0.1:8080' },
  },
});
