import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// `npm run dev -w packages/console` serves the console with hot reload and sends the API and sign-in to a
// platform started with `npm start` (MICROAPP_URL to point elsewhere).
const platform = process.env.MICROAPP_URL ?? 'http://localhost:8080';

export default defineConfig({
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false, target: 'es2022' },
  server: { proxy: { '/api': platform, '/auth': platform } },
});
