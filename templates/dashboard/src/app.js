// Reads a small CSV of (label, value) rows and draws a bar chart as SVG.
export function parseCsv(text) {
  const [header, ...lines] = text.trim().split(/\r?\n/);
  if (!header) return [];
  return lines
    .map((line) => line.split(','))
    .filter((cells) => cells.length >= 2 && Number.isFinite(Number(cells[1])))
    .map(([label, value]) => ({ label: label.trim(), value: Number(value) }));
}

const esc = (s) =>
  String(s).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c],
  );

/** An accessible SVG bar chart: a title, one labelled bar per row, values as text. */
export function barChart(rows, { title = 'Figures', width = 640, height = 280 } = {}) {
  const max = Math.max(1, ...rows.map((r) => r.value));
  const barWidth = rows.length ? Math.floor((width - 40) / rows.length) : 0;
  const bars = rows
    .map((r, i) => {
      const h = Math.round((r.value / max) * (height - 60));
      const x = 20 + i * barWidth;
      const y = height - 30 - h;
      return (
        `<g><rect x="${x}" y="${y}" width="${barWidth - 8}" height="${h}" fill="#2f6fb0"><title>${esc(r.label)}: ${r.value}</title></rect>` +
        `<text x="${x}" y="${height - 12}" font-size="11">${esc(r.label)}</text><text x="${x}" y="${y - 4}" font-size="11">${r.value}</text></g>`
      );
    })
    .join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="${esc(title)}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" style="max-width:100%;height:auto"><title>${esc(title)}</title>${bars}</svg>`;
}
