import { describe, expect, it } from 'vitest';
import { CLICK_IDS, PAGE_COLUMNS, createPageEnricher } from '../../actors/enrichers/page.js';
import type { EnrichPatch } from '../../actors/enrichers/types.js';
import type { Envelope } from '../../engine/index.js';
import { FlowError } from '../../engine/errors/index.js';

const PAGE = 'https://www.shop.com/products/shoes';

function envelope(pageUrl: string, pageReferrer: string): Envelope {
  return {
    id: '00000000-0000-7000-8000-000000000000', projectId: 1, key: 'in.gen.track.page', channel: 'gen', service: 'track', name: 'page',
    uid: 'u1', userId: null, ts: 0, receivedAt: 0, ip: '203.0.113.7', userAgent: 'ua', pageUrl, pageReferrer, pageTitle: '', data: {}, idFromClient: false,
  };
}

function enrichSync(e: ReturnType<typeof createPageEnricher>, pageUrl: string, referrer: string): EnrichPatch {
  const patch = e.enrich(envelope(pageUrl, referrer));
  if (patch instanceof Promise) throw new Error('the page enricher must answer synchronously');
  return patch;
}

interface Case {
  readonly name: string;
  readonly page: string;
  readonly ref: string;
  /** Columns not listed here must be ''. */
  readonly want: Readonly<Record<string, string>>;
}

const LONG_PATH = `/${'a'.repeat(4000)}`;
const LONG_PREFIX = `https://www.shop.com${LONG_PATH}?utm_source=long&utm_campaign=`;
const LONG_URL = LONG_PREFIX + 'c'.repeat(4096 - LONG_PREFIX.length);

const CASES: readonly Case[] = [
  // direct
  { name: 'no referrer', page: `${PAGE}?color=red`, ref: '',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', page_query: 'color=red', source_type: 'direct' } },
  { name: 'about:blank referrer (no host)', page: PAGE, ref: 'about:blank',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', source_type: 'direct' } },
  { name: 'garbage referrer', page: PAGE, ref: 'not a url',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', source_type: 'direct' } },
  { name: 'empty page and referrer', page: '', ref: '', want: { source_type: 'direct' } },

  // internal
  { name: 'same host', page: PAGE, ref: 'https://www.shop.com/',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', referrer_host: 'www.shop.com', source_type: 'internal' } },
  { name: 'same host, other port', page: 'http://localhost:3000/a', ref: 'http://localhost:5173/b',
    want: { page_host: 'localhost', page_path: '/a', referrer_host: 'localhost', source_type: 'internal' } },
  { name: 'subdomain of the same site', page: PAGE, ref: 'https://blog.shop.com/post/1',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', referrer_host: 'blog.shop.com', source_type: 'internal' } },
  { name: 'subdomain under a two-label suffix', page: 'https://www.shop.co.uk/', ref: 'https://help.shop.co.uk/faq',
    want: { page_host: 'www.shop.co.uk', page_path: '/', referrer_host: 'help.shop.co.uk', source_type: 'internal' } },
  { name: 'another site under the same two-label suffix is not internal', page: 'https://www.shop.co.uk/', ref: 'https://www.other.co.uk/',
    want: { page_host: 'www.shop.co.uk', page_path: '/', referrer_host: 'www.other.co.uk', source_type: 'referral', source_name: 'www.other.co.uk' } },
  { name: 'configured internal host', page: PAGE, ref: 'https://checkout-shop.net/done',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', referrer_host: 'checkout-shop.net', source_type: 'internal' } },
  { name: 'subdomain of a configured internal host', page: PAGE, ref: 'https://pay.checkout-shop.net/3ds',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', referrer_host: 'pay.checkout-shop.net', source_type: 'internal' } },
  { name: 'relative referrer resolves against the page', page: PAGE, ref: '/cart?step=2',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', referrer_host: 'www.shop.com', source_type: 'internal' } },
  { name: 'IP addresses only match exactly', page: 'http://10.0.0.5/a', ref: 'http://192.168.0.5/b',
    want: { page_host: '10.0.0.5', page_path: '/a', referrer_host: '192.168.0.5', source_type: 'referral', source_name: '192.168.0.5' } },

  // search
  { name: 'Google (no keyword since 2011)', page: PAGE, ref: 'https://www.google.com/',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', referrer_host: 'www.google.com', source_type: 'search', source_name: 'google' } },
  { name: 'Google /url?q= is the target, not a keyword', page: PAGE, ref: 'https://www.google.com/url?q=https://www.shop.com/&sa=U',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', referrer_host: 'www.google.com', source_type: 'search', source_name: 'google' } },
  { name: 'google.co.uk', page: PAGE, ref: 'https://www.google.co.uk/',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', referrer_host: 'www.google.co.uk', source_type: 'search', source_name: 'google' } },
  { name: 'google.com.br', page: PAGE, ref: 'https://www.google.com.br/',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', referrer_host: 'www.google.com.br', source_type: 'search', source_name: 'google' } },
  { name: 'Google search app', page: PAGE, ref: 'android-app://com.google.android.googlequicksearchbox/',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', referrer_host: 'com.google.android.googlequicksearchbox', source_type: 'search', source_name: 'google' } },
  { name: 'Bing with q', page: PAGE, ref: 'https://www.bing.com/search?q=red+running+shoes&form=QBLH',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', referrer_host: 'www.bing.com', source_type: 'search', source_name: 'bing', search_keyword: 'red running shoes' } },
  { name: 'Yandex with text (Cyrillic, percent-encoded)', page: PAGE, ref: 'https://yandex.ru/search/?text=%D0%BA%D1%83%D0%BF%D0%B8%D1%82%D1%8C+%D1%81%D0%BB%D0%BE%D0%BD%D0%B0&lr=213',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', referrer_host: 'yandex.ru', source_type: 'search', source_name: 'yandex', search_keyword: 'купить слона' } },
  { name: 'yandex.com.tr', page: PAGE, ref: 'https://yandex.com.tr/search/?text=ayakkab%C4%B1',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', referrer_host: 'yandex.com.tr', source_type: 'search', source_name: 'yandex', search_keyword: 'ayakkabı' } },
  { name: 'DuckDuckGo', page: PAGE, ref: 'https://duckduckgo.com/',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', referrer_host: 'duckduckgo.com', source_type: 'search', source_name: 'duckduckgo' } },
  { name: 'Baidu wd', page: PAGE, ref: 'https://www.baidu.com/s?wd=%E8%B7%91%E9%9E%8B&rsv_spt=1',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', referrer_host: 'www.baidu.com', source_type: 'search', source_name: 'baidu', search_keyword: '跑鞋' } },
  { name: 'Baidu mobile word', page: PAGE, ref: 'https://m.baidu.com/s?word=shoes',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', referrer_host: 'm.baidu.com', source_type: 'search', source_name: 'baidu', search_keyword: 'shoes' } },
  { name: 'Yahoo p', page: PAGE, ref: 'https://search.yahoo.com/search?p=trail+shoes',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', referrer_host: 'search.yahoo.com', source_type: 'search', source_name: 'yahoo', search_keyword: 'trail shoes' } },
  { name: 'Naver query', page: PAGE, ref: 'https://search.naver.com/search.naver?query=%EC%8B%A0%EB%B0%9C',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', referrer_host: 'search.naver.com', source_type: 'search', source_name: 'naver', search_keyword: '신발' } },
  { name: 'Seznam q', page: PAGE, ref: 'https://search.seznam.cz/?q=boty',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', referrer_host: 'search.seznam.cz', source_type: 'search', source_name: 'seznam', search_keyword: 'boty' } },
  { name: 'blank keyword is no keyword', page: PAGE, ref: 'https://www.ecosia.org/search?q=+',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', referrer_host: 'www.ecosia.org', source_type: 'search', source_name: 'ecosia' } },

  // social
  { name: 'facebook.com', page: PAGE, ref: 'https://www.facebook.com/',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', referrer_host: 'www.facebook.com', source_type: 'social', source_name: 'facebook' } },
  { name: 'l.facebook.com link shim', page: PAGE, ref: 'https://l.facebook.com/l.php?u=https%3A%2F%2Fwww.shop.com%2F',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', referrer_host: 'l.facebook.com', source_type: 'social', source_name: 'facebook' } },
  { name: 't.co', page: PAGE, ref: 'https://t.co/AbC123',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', referrer_host: 't.co', source_type: 'social', source_name: 'twitter' } },
  { name: 'lnkd.in', page: PAGE, ref: 'https://lnkd.in/eXyZ',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', referrer_host: 'lnkd.in', source_type: 'social', source_name: 'linkedin' } },
  { name: 'instagram', page: PAGE, ref: 'https://l.instagram.com/',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', referrer_host: 'l.instagram.com', source_type: 'social', source_name: 'instagram' } },
  { name: 'reddit', page: PAGE, ref: 'https://out.reddit.com/t3_abc?url=x',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', referrer_host: 'out.reddit.com', source_type: 'social', source_name: 'reddit' } },
  { name: 'youtube', page: PAGE, ref: 'https://m.youtube.com/',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', referrer_host: 'm.youtube.com', source_type: 'social', source_name: 'youtube' } },
  { name: 'utm_source a network with utm_medium social, no referrer', page: `${PAGE}?utm_source=FB&utm_medium=social`, ref: '',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', page_query: 'utm_source=FB&utm_medium=social', utm_source: 'FB', utm_medium: 'social', source_type: 'social', source_name: 'facebook' } },
  { name: 'utm_medium social with an unknown source is not social', page: `${PAGE}?utm_source=forum&utm_medium=social`, ref: '',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', page_query: 'utm_source=forum&utm_medium=social', utm_source: 'forum', utm_medium: 'social', source_type: 'direct' } },

  // email
  { name: 'Gmail web', page: PAGE, ref: 'https://mail.google.com/',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', referrer_host: 'mail.google.com', source_type: 'email', source_name: 'gmail' } },
  { name: 'Outlook web', page: PAGE, ref: 'https://outlook.live.com/',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', referrer_host: 'outlook.live.com', source_type: 'email', source_name: 'outlook' } },
  { name: 'Gmail app', page: PAGE, ref: 'android-app://com.google.android.gm/',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', referrer_host: 'com.google.android.gm', source_type: 'email', source_name: 'gmail' } },
  { name: 'utm_medium=email, no referrer', page: `${PAGE}?utm_source=newsletter&utm_medium=email&utm_campaign=may`, ref: '',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', page_query: 'utm_source=newsletter&utm_medium=email&utm_campaign=may', utm_source: 'newsletter', utm_medium: 'email', utm_campaign: 'may', source_type: 'email' } },
  { name: 'utm_medium=email wins over a search referrer', page: `${PAGE}?utm_medium=E-Mail`, ref: 'https://www.google.com/',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', page_query: 'utm_medium=E-Mail', utm_medium: 'E-Mail', referrer_host: 'www.google.com', source_type: 'email' } },

  // paid
  { name: 'gclid with a Google referrer', page: `${PAGE}?gclid=Cj0KCQjw`, ref: 'https://www.google.com/',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', page_query: 'gclid=Cj0KCQjw', referrer_host: 'www.google.com', click_id: 'Cj0KCQjw', click_id_type: 'google', source_type: 'paid', source_name: 'google' } },
  { name: 'gbraid counts as Google', page: `${PAGE}?gbraid=0AAAAA`, ref: '',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', page_query: 'gbraid=0AAAAA', click_id: '0AAAAA', click_id_type: 'google', source_type: 'paid', source_name: 'google' } },
  { name: 'fbclid from the Facebook link shim', page: `${PAGE}?fbclid=IwAR3x`, ref: 'https://l.facebook.com/',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', page_query: 'fbclid=IwAR3x', referrer_host: 'l.facebook.com', click_id: 'IwAR3x', click_id_type: 'facebook', source_type: 'paid', source_name: 'facebook' } },
  { name: 'msclkid without a referrer', page: `${PAGE}?msclkid=abc123`, ref: '',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', page_query: 'msclkid=abc123', click_id: 'abc123', click_id_type: 'microsoft', source_type: 'paid', source_name: 'microsoft' } },
  { name: 'msclkid with a Bing referrer names Bing', page: `${PAGE}?msclkid=abc123`, ref: 'https://www.bing.com/',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', page_query: 'msclkid=abc123', referrer_host: 'www.bing.com', click_id: 'abc123', click_id_type: 'microsoft', source_type: 'paid', source_name: 'bing' } },
  { name: 'several click ids: gclid first', page: `${PAGE}?fbclid=F&gclid=G`, ref: '',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', page_query: 'fbclid=F&gclid=G', click_id: 'G', click_id_type: 'google', source_type: 'paid', source_name: 'google' } },
  { name: 'li_fat_id is LinkedIn', page: `${PAGE}?li_fat_id=L`, ref: '',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', page_query: 'li_fat_id=L', click_id: 'L', click_id_type: 'linkedin', source_type: 'paid', source_name: 'linkedin' } },
  { name: 'utm_medium=cpc', page: `${PAGE}?utm_source=google&utm_medium=cpc&utm_campaign=brand`, ref: '',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', page_query: 'utm_source=google&utm_medium=cpc&utm_campaign=brand', utm_source: 'google', utm_medium: 'cpc', utm_campaign: 'brand', source_type: 'paid', source_name: 'google' } },
  { name: 'utm_medium starting with paid, unknown source', page: `${PAGE}?utm_source=taboola&utm_medium=Paid_Native`, ref: 'https://news.example.org/',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', page_query: 'utm_source=taboola&utm_medium=Paid_Native', referrer_host: 'news.example.org', utm_source: 'taboola', utm_medium: 'Paid_Native', source_type: 'paid' } },

  // referral
  { name: 'a blog', page: PAGE, ref: 'https://someblog.net/2024/05/best-shoes/',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', referrer_host: 'someblog.net', source_type: 'referral', source_name: 'someblog.net' } },
  { name: 'protocol-relative referrer', page: PAGE, ref: '//cdn.partner.io/widget',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', referrer_host: 'cdn.partner.io', source_type: 'referral', source_name: 'cdn.partner.io' } },
  { name: 'a host that only ends like a listed one', page: PAGE, ref: 'https://notgoogle.com/',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', referrer_host: 'notgoogle.com', source_type: 'referral', source_name: 'notgoogle.com' } },
  { name: 'google on a blog host is not Google', page: PAGE, ref: 'https://google.blogspot.com/',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', referrer_host: 'google.blogspot.com', source_type: 'referral', source_name: 'google.blogspot.com' } },

  // UTM parsing
  { name: 'encoded values are decoded and kept exactly', page: `${PAGE}?utm_campaign=Spring%20Sale%2B2024%26more&utm_term=caf%C3%A9+cr%C3%A8me&utm_content=Banner_A`, ref: '',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', page_query: 'utm_campaign=Spring%20Sale%2B2024%26more&utm_term=caf%C3%A9+cr%C3%A8me&utm_content=Banner_A',
      utm_campaign: 'Spring Sale+2024&more', utm_term: 'café crème', utm_content: 'Banner_A', source_type: 'direct' } },
  { name: 'keys are case-insensitive; the exact lower-case key wins', page: `${PAGE}?UTM_Source=Partner&Utm_Medium=Referral&utm_source=partner-x`, ref: '',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', page_query: 'UTM_Source=Partner&Utm_Medium=Referral&utm_source=partner-x', utm_source: 'partner-x', utm_medium: 'Referral', source_type: 'direct' } },
  { name: 'first non-empty value of a repeated key', page: `${PAGE}?utm_source=&utm_source=a&utm_source=b`, ref: '',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', page_query: 'utm_source=&utm_source=a&utm_source=b', utm_source: 'a', source_type: 'direct' } },
  { name: 'fragment is not query', page: `${PAGE}?utm_source=a#utm_medium=cpc`, ref: '',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', page_query: 'utm_source=a', utm_source: 'a', source_type: 'direct' } },
  { name: 'malformed escape does not throw', page: `${PAGE}?utm_term=100%&utm_source=x`, ref: '',
    want: { page_host: 'www.shop.com', page_path: '/products/shoes', page_query: 'utm_term=100%&utm_source=x', utm_term: '100%', utm_source: 'x', source_type: 'direct' } },

  // robustness
  { name: 'malformed page URL keeps its campaign', page: 'http://exa mple.com/p?utm_source=x&gclid=g', ref: '',
    want: { page_query: 'utm_source=x&gclid=g', utm_source: 'x', click_id: 'g', click_id_type: 'google', source_type: 'paid', source_name: 'google' } },
  { name: 'relative page URL keeps path and query', page: '/landing?utm_campaign=a+b', ref: 'https://someblog.net/',
    want: { page_path: '/landing', page_query: 'utm_campaign=a+b', utm_campaign: 'a b', referrer_host: 'someblog.net', source_type: 'referral', source_name: 'someblog.net' } },
  { name: 'relative referrer with a relative page: no host to resolve to', page: '/landing', ref: '/home',
    want: { page_path: '/landing', source_type: 'direct' } },
  { name: 'upper-case host and trailing dot are normalised', page: 'HTTPS://WWW.Shop.COM./Products', ref: 'https://WWW.GOOGLE.DE./',
    want: { page_host: 'www.shop.com', page_path: '/Products', referrer_host: 'www.google.de', source_type: 'search', source_name: 'google' } },
  { name: 'a 4 KB URL', page: LONG_URL, ref: '',
    want: { page_host: 'www.shop.com', page_path: LONG_PATH, page_query: LONG_URL.slice(LONG_URL.indexOf('?') + 1),
      utm_source: 'long', utm_campaign: LONG_URL.slice(LONG_URL.indexOf('utm_campaign=') + 13), source_type: 'direct' } },
];

function expectCase(patch: EnrichPatch, c: Case): void {
  const expected: Record<string, string> = {};
  for (const col of PAGE_COLUMNS) expected[col] = c.want[col] ?? '';
  expect(patch, c.name).toEqual(expected);
}

describe('page enricher - classification table', () => {
  const enricher = createPageEnricher({ internalHosts: ['checkout-shop.net'] });
  const uncached = createPageEnricher({ internalHosts: ['checkout-shop.net'], cacheSize: 0 });

  it('the 4 KB case is 4096 characters', () => {
    expect(LONG_URL.length).toBe(4096);
  });

  for (const c of CASES) {
    it(`${c.want.source_type ?? ''} - ${c.name}`, () => {
      expectCase(enrichSync(enricher, c.page, c.ref), c);
      // Again: now from the caches (and the per-page memo), same answer.
      expectCase(enrichSync(enricher, c.page, c.ref), c);
      expectCase(enrichSync(uncached, c.page, c.ref), c);
    });
  }
});

describe('page enricher - contract', () => {
  it('declares namespace, columns and reads, and answers synchronously', () => {
    const e = createPageEnricher({ name: 'page1' });
    expect(e.name).toBe('page1');
    expect(e.namespace).toBe('page');
    expect(e.columns).toEqual([
      'page_host', 'page_path', 'page_query', 'referrer_host', 'utm_source', 'utm_medium', 'utm_campaign', 'utm_term', 'utm_content',
      'click_id', 'click_id_type', 'source_type', 'source_name', 'search_keyword',
    ]);
    expect(e.reads).toEqual(['pageUrl', 'pageReferrer']);
    expect(createPageEnricher().name).toBe('page');
    expect(e.enrich(envelope(PAGE, ''))).not.toBeInstanceOf(Promise);
  });

  it('writes every column, as strings, and nothing else', () => {
    const e = createPageEnricher({});
    for (const c of CASES) {
      const patch = enrichSync(e, c.page, c.ref);
      expect(Object.keys(patch)).toEqual([...PAGE_COLUMNS]);
      for (const v of Object.values(patch)) expect(typeof v).toBe('string');
    }
  });

  it('returns the same frozen patch for repeats of a page view', () => {
    const e = createPageEnricher({});
    const a = enrichSync(e, `${PAGE}?utm_source=x`, 'https://www.google.com/');
    const b = enrichSync(e, `${PAGE}?utm_source=x`, 'https://www.google.com/');
    expect(b).toBe(a);
    expect(Object.isFrozen(a)).toBe(true);
    // The same page with another referrer is recomputed, not served from the memo.
    expect(enrichSync(e, `${PAGE}?utm_source=x`, '').source_type).toBe('direct');
    expect(enrichSync(e, `${PAGE}?utm_source=x`, 'https://www.google.com/').source_type).toBe('search');
  });

  it('maps every click id to its network', () => {
    const e = createPageEnricher({});
    const types = Object.fromEntries(CLICK_IDS.map(([param]) => [param, enrichSync(e, `${PAGE}?${param}=X1`, '').click_id_type]));
    expect(types).toEqual({
      gclid: 'google', gbraid: 'google', wbraid: 'google', yclid: 'yandex', fbclid: 'facebook',
      msclkid: 'microsoft', ttclid: 'tiktok', twclid: 'twitter', li_fat_id: 'linkedin',
    });
  });

  it('internalHosts belong to one enricher only', () => {
    const withInternal = createPageEnricher({ internalHosts: ['checkout-shop.net'] });
    const without = createPageEnricher({});
    expect(enrichSync(withInternal, PAGE, 'https://checkout-shop.net/').source_type).toBe('internal');
    expect(enrichSync(without, PAGE, 'https://checkout-shop.net/').source_type).toBe('referral');
  });

  it('rejects bad options, reporting every problem at once', () => {
    let caught: unknown;
    try {
      createPageEnricher({ name: '', cacheSize: -1, internalHosts: ['https://shop.com/', 'ok.example', ''] });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(FlowError);
    const err = caught as FlowError;
    expect(err.code).toBe('FLOW_ERR_CONFIG_INVALID');
    expect(err.message).toContain('name:');
    expect(err.message).toContain('cacheSize:');
    expect(err.message).toContain('internalHosts[0]');
    expect(err.message).toContain('internalHosts[2]');
    expect(err.message).not.toContain('internalHosts[1]');
  });

  it('never throws, whatever the URLs', () => {
    const e = createPageEnricher({});
    const junk = ['%', '?', '#', '//', '///', 'http://', 'http://[::1', 'http://a b', 'javascript:alert(1)', 'data:text/html,<p>',
      '\u0000\uffff\ud800', 'https://x.com/?utm_source=%E0%A4%A', 'http://example.com:99999/', 'file:///etc/passwd', 'http://[::1]:8080/p?q'];
    for (const page of junk) {
      for (const ref of junk) expect(() => enrichSync(e, page, ref)).not.toThrow();
    }
  });
});

describe('page enricher - speed (printed, not asserted)', () => {
  const REFERRERS = ['', 'https://www.google.com/', 'https://www.bing.com/search?q=shoes', 'https://l.facebook.com/', 'https://someblog.net/post', 'https://www.shop.com/'];

  function perEvent(e: ReturnType<typeof createPageEnricher>, events: readonly Envelope[], rounds: number): number {
    let sink = 0;
    for (const ev of events) sink += (e.enrich(ev) as EnrichPatch).page_host === '' ? 0 : 1; // warm-up
    const t0 = process.hrtime.bigint();
    for (let r = 0; r < rounds; r++) for (const ev of events) sink += (e.enrich(ev) as EnrichPatch).page_host === '' ? 0 : 1;
    expect(sink).toBeGreaterThan(0);
    return Number(process.hrtime.bigint() - t0) / 1000 / (rounds * events.length);
  }

  it('prints µs per enrich: same page view, cached parts, uncached', () => {
    const pages = Array.from({ length: 500 }, (_, i) => `https://www.shop.com/products/${i}?utm_source=news&utm_medium=email&utm_campaign=c${i % 7}`);
    const sameView = Array.from({ length: 1000 }, () => envelope(pages[0]!, REFERRERS[1]!));
    // Pages and referrers both repeat, but never as the same pair twice in a row (no memo hits).
    const mixed = Array.from({ length: 3000 }, (_, i) => envelope(pages[i % pages.length]!, REFERRERS[i % REFERRERS.length]!));
    const memo = perEvent(createPageEnricher({}), sameView, 200);
    const cached = perEvent(createPageEnricher({}), mixed, 50);
    const uncached = perEvent(createPageEnricher({ cacheSize: 0 }), mixed, 20);
    console.log(`page enrich: ${memo.toFixed(3)} µs same page view (memo), ${cached.toFixed(3)} µs cached page + referrer, ${uncached.toFixed(3)} µs uncached (cacheSize 0)`);
  });
});
