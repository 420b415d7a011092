// Small DOM and formatting helpers.
//
// Run data is only ever inserted as text (setText, or h's text children), never as HTML.

export const $ = (id) => document.getElementById(id);

/** Set an element's text (only ever as text); empty values show a dash. */
export function setText(node, value) {
  const element = typeof node === "string" ? $(node) : node;
  const text = value === null || value === undefined || value === "" ? "–" : String(value);
  if (element.textContent !== text) element.textContent = text;
}

/** A new element with text content and attributes; children are nodes or strings (as text). */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") element.className = value;
    else if (key === "text") element.textContent = value;
    else element.setAttribute(key, value);
  }
  for (const child of children) {
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export const point = (p) => (p ? `(${p.x}, ${p.y})` : "–");
export const num = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));

export function ms(value) {
  if (value === null || value === undefined) return null;
  return value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${Math.round(value)} ms`;
}

export function seconds(value) {
  if (value === null || value === undefined) return "–";
  if (value < 60) return `${value.toFixed(1)} s`;
  const minutes = Math.floor(value / 60);
  return `${minutes} min ${Math.round(value - minutes * 60)} s`;
}

export function usd(value) {
  if (value === null || value === undefined) return "–";
  return `$${Number(value).toFixed(Number(value) < 1 ? 4 : 2)}`;
}

export function loadJson(key) {
  try {
    const value = JSON.parse(window.localStorage.getItem(key) || "null");
    return value && typeof value === "object" ? value : {};
  } catch {
    return {};
  }
}

export function saveJson(key, value) {
  try {
    window.localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // storage full or disabled: settings just do not persist
  }
}

/** An ISO time as local "YYYY-MM-DD HH:MM:SS" (the text itself when it is not a time). */
export function shortTime(iso) {
  if (!iso) return "–";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}
