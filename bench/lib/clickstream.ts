import { createZipf, mulberry32, permutation } from './random.js';

/**
 * Tracked events that look like a small shop's traffic: users drawn from a
 * Zipf distribution (a few heavy users, a long tail), product pages more
 * popular than the rest, referrers from search, social and the site itself.
 * Seeded: the same options give the same events.
 */

export interface TrackParams {
  readonly service: 'track';
  readonly name: string;
  readonly uid: string;
  readonly page: { readonly url: string; readonly ref?: string; readonly title: string };
  readonly data: Record<string, string | number>;
}

export interface ClickstreamOptions {
  readonly users: number;
  /** Zipf exponent of user activity. */
  readonly zipfS: number;
  readonly seed: number;
}

const SITE = 'https://shop.example';
const CATEGORIES = ['shoes', 'bags', 'watches', 'jackets', 'hats', 'scarves', 'belts', 'socks'] as const;
const ADJECTIVES = ['Classic', 'Leather', 'Canvas', 'Merino', 'Vintage', 'Slim', 'Waterproof', 'Everyday'] as const;
const SEARCHES = ['running shoes', 'black bag', 'gift for him', 'wool scarf', 'sale', 'winter jacket'] as const;
const PRODUCTS = 5_000;

function pick<T>(list: readonly T[], rand: () => number): T {
  return list[Math.floor(rand() * list.length)]!;
}

function titleCase(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}

/** Returns a generator of `track` params; each call is one event. */
export function createClickstream(o: ClickstreamOptions): () => TrackParams {
  const rand = mulberry32(o.seed);
  // Ranks are shuffled so the hottest users are not also numerically adjacent.
  const ids = permutation(o.users, rand);
  const userRank = createZipf(o.users, o.zipfS, rand);
  const productRank = createZipf(PRODUCTS, 0.8, rand);
  const uidOf = (rank: number): string => {
    const n = ids[rank]!;
    return `u-${n.toString(36).padStart(5, '0')}-${(Math.imul(n, 2654435761) >>> 0).toString(16)}`;
  };

  const page = (): { url: string; title: string } => {
    const r = rand();
    if (r < 0.15) return { url: `${SITE}/`, title: 'Shop Example | Home' };
    if (r < 0.35) {
      const c = pick(CATEGORIES, rand);
      return { url: `${SITE}/c/${c}?page=${1 + Math.floor(rand() * 5)}`, title: `${titleCase(c)} | Shop Example` };
    }
    if (r < 0.80) {
      const p = productRank();
      const c = CATEGORIES[p % CATEGORIES.length]!;
      const adj = ADJECTIVES[(p >> 3) % ADJECTIVES.length]!;
      return { url: `${SITE}/p/${p}-${adj.toLowerCase()}-${c}`, title: `${adj} ${titleCase(c)} #${p} | Shop Example` };
    }
    if (r < 0.90) {
      const q = pick(SEARCHES, rand);
      return { url: `${SITE}/search?q=${encodeURIComponent(q)}`, title: `Search: ${q} | Shop Example` };
    }
    if (r < 0.97) return { url: `${SITE}/cart`, title: 'Your cart | Shop Example' };
    return { url: `${SITE}/checkout?step=${1 + Math.floor(rand() * 3)}`, title: 'Checkout | Shop Example' };
  };

  const referrer = (): string | undefined => {
    const r = rand();
    if (r < 0.40) return `${SITE}/c/${pick(CATEGORIES, rand)}`;
    if (r < 0.65) return `https://www.google.com/search?q=${encodeURIComponent(pick(SEARCHES, rand))}`;
    if (r < 0.75) return 'https://l.facebook.com/';
    return undefined; // direct
  };

  return (): TrackParams => {
    const uid = uidOf(userRank());
    const p = page();
    const ref = referrer();
    const click = rand() < 0.15;
    const data: Record<string, string | number> = click
      ? { el: rand() < 0.5 ? 'add-to-cart' : 'nav', x: Math.floor(rand() * 1280), y: Math.floor(rand() * 800) }
      : { vw: rand() < 0.6 ? 390 : 1440, scroll: Math.floor(rand() * 100) };
    return {
      service: 'track',
      name: click ? 'click' : 'page',
      uid,
      page: ref === undefined ? p : { ...p, ref },
      data,
    };
  };
}
