// Counts in the words of conditions, Events and the command line: "1 workload", "3 workloads".

/** `n` and the noun in the number that fits it: counted(1, "proxy", "proxies") is "1 proxy". */
export function counted(n: number, noun: string, plural = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : plural}`;
}
