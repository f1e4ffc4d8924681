/**
 * A FIFO ring buffer that grows by doubling. One per busy actor, allocated
 * only when a message has to wait, so idle actors carry no queue at all.
 */
export class Mailbox<M> {
  private items: (M | undefined)[];
  private head = 0;
  length = 0;

  constructor(initialCapacity = 4) {
    this.items = new Array<M | undefined>(initialCapacity);
  }

  push(item: M): void {
    if (this.length === this.items.length) this.grow();
    this.items[(this.head + this.length) % this.items.length] = item;
    this.length++;
  }

  shift(): M | undefined {
    if (this.length === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) % this.items.length;
    this.length--;
    return item;
  }

  private grow(): void {
    const next = new Array<M | undefined>(this.items.length * 2);
    for (let i = 0; i < this.length; i++) next[i] = this.items[(this.head + i) % this.items.length];
    this.items = next;
    this.head = 0;
  }
}
