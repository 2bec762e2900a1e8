// A user agent without a browser: fetch with redirects handled by hand and a cookie jar, which
// walks mandate's sign-in and consent pages by reading their forms. The browser test does the
// same with Chromium; this one lets the protocol tests run fast and show every status code.

/** Decodes the character references an HTML template engine writes into text and attributes. */
export function decodeHtml(s) {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|amp|lt|gt|quot|apos);/gi, (_, ref) => {
    const r = ref.toLowerCase();
    if (r.startsWith('#x')) return String.fromCodePoint(parseInt(r.slice(2), 16));
    if (r.startsWith('#')) return String.fromCodePoint(parseInt(r.slice(1), 10));
    return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[r];
  });
}

const attr = (tag, name) => {
  const m = tag.match(new RegExp(`\\s${name}\\s*=\\s*(?:"([^"]*)"|'([^']*)'|([^\\s>]+))`, 'i'));
  return m ? decodeHtml(m[1] ?? m[2] ?? m[3]) : undefined;
};

/** The forms of a page: action, method, and the name/value of each input and button. */
export function parseForms(html) {
  const forms = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const [, openTag, body] = m;
    const inputs = [];
    for (const t of body.matchAll(/<(input|button)\b([^>]*)>/gi)) {
      inputs.push({ tag: t[1].toLowerCase(), type: attr(t[2], 'type'), name: attr(t[2], 'name'), value: attr(t[2], 'value') });
    }
    forms.push({ action: attr(openTag, 'action'), method: (attr(openTag, 'method') || 'get').toLowerCase(), inputs, html: m[0] });
  }
  return forms;
}

/** The text of the element with this id (tags stripped, references decoded), or undefined. */
export function textById(html, id) {
  const m = html.match(new RegExp(`<(\\w+)[^>]*\\sid="${id}"[^>]*>([\\s\\S]*?)</\\1>`, 'i'));
  return m ? decodeHtml(m[2].replace(/<[^>]*>/g, '')).trim() : undefined;
}

/** Which of mandate's pages this is, by its form. */
export function pageKind(html) {
  const forms = parseForms(html);
  if (forms.some((f) => f.inputs.some((i) => i.name === 'password'))) return 'login';
  if (forms.some((f) => f.inputs.some((i) => i.name === 'decision'))) return 'consent';
  if (/id="error-code"/.test(html)) return 'error';
  return 'other';
}

export class UserAgent {
  /** `issuer`: the server's issuer URL; requests to its origin carry the cookies. */
  constructor(issuer) {
    this.origin = new URL(issuer).origin;
    this.cookies = new Map();
    /** Every response seen: { method, url, status, kind }. */
    this.log = [];
  }

  cookieHeader() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  /** One request, no redirect followed. `form` (an object) is posted urlencoded. */
  async request(url, { method = 'GET', form, headers = {} } = {}) {
    url = new URL(url).href;
    const h = { ...headers };
    if (new URL(url).origin === this.origin && this.cookies.size) h.cookie = this.cookieHeader();
    let body;
    if (form) {
      method = 'POST';
      body = new URLSearchParams(form).toString();
      h['content-type'] = 'application/x-www-form-urlencoded';
      h.origin ??= this.origin; // as a browser does for a form post
    }
    const res = await fetch(url, { method, headers: h, body, redirect: 'manual' });
    if (new URL(url).origin === this.origin) {
      for (const c of res.headers.getSetCookie()) {
        const [pair, ...attrs] = c.split(';');
        const eq = pair.indexOf('=');
        const name = pair.slice(0, eq).trim();
        const value = pair.slice(eq + 1).trim();
        const expired = attrs.some((a) => /^\s*max-age\s*=\s*0\s*$/i.test(a));
        if (expired || value === '') this.cookies.delete(name);
        else this.cookies.set(name, value);
      }
    }
    const text = await res.text();
    const location = res.headers.get('location');
    const out = {
      method,
      url,
      status: res.status,
      headers: res.headers,
      text,
      location: location === null ? undefined : new URL(location, url).href,
    };
    out.kind = out.location ? 'redirect' : pageKind(text);
    this.log.push({ method, url, status: res.status, kind: out.kind });
    return out;
  }

  /** Posts the page's form that contains input `marker`, with its hidden fields plus `fields`. */
  async submit(page, marker, fields) {
    const form = parseForms(page.text).find((f) => f.inputs.some((i) => i.name === marker));
    if (!form) throw new Error(`no form with ${marker} on ${page.url} (${page.status}):\n${page.text.slice(0, 2000)}`);
    if (form.method !== 'post') throw new Error(`form on ${page.url} has method ${form.method}, expected post`);
    const data = {};
    for (const i of form.inputs) if (i.type === 'hidden' && i.name) data[i.name] = i.value ?? '';
    Object.assign(data, fields);
    const action = form.action ? new URL(form.action, page.url).href : page.url;
    return this.request(action, { form: data });
  }

  /**
   * Drives the front channel from an authorization URL until the server sends the browser
   * away from its own origin (to the client's redirect URI), signing in with `username` and
   * `password` and answering the consent page with `decision` ('approve' or 'deny') when asked.
   * Returns { callback: URL, pages: kinds of the pages shown on the way, shown: those pages'
   * responses (url, status, text), last: the response that left }.
   * Throws with the page's text when the server shows anything else (e.g. an error page).
   */
  async authorize(authorizationUrl, { username, password, decision = 'approve', remember = false, maxSteps = 12 } = {}) {
    const pages = [];
    const shown = [];
    let res = await this.request(authorizationUrl);
    for (let step = 0; step < maxSteps; step++) {
      if (res.location) {
        if (new URL(res.location).origin !== this.origin) return { callback: new URL(res.location), pages, shown, last: res };
        if (![302, 303, 307].includes(res.status)) throw new Error(`unexpected redirect status ${res.status} from ${res.url}`);
        res = await this.request(res.location);
        continue;
      }
      pages.push(res.kind);
      shown.push(res);
      if (res.status === 200 && res.kind === 'login') {
        if (username === undefined) throw new Error(`login page at ${res.url} but no credentials given`);
        res = await this.submit(res, 'password', { username, password });
      } else if (res.status === 200 && res.kind === 'consent') {
        const fields = { decision };
        if (remember) fields.remember = 'yes';
        res = await this.submit(res, 'decision', fields);
      } else {
        const err = new Error(
          `front channel stopped at ${res.method} ${res.url}: ${res.status} ${res.kind}` +
            `${textById(res.text, 'error-code') ? ` (error-code ${textById(res.text, 'error-code')})` : ''}\n${res.text.slice(0, 1500)}`,
        );
        err.response = res;
        throw err;
      }
    }
    throw new Error(`front channel did not finish in ${maxSteps} steps: ${JSON.stringify(this.log.slice(-maxSteps))}`);
  }
}
