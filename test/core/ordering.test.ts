import { describe, expect, it } from 'vitest';
import { agedPriority, orderQueue, parsePriority, PRIORITY_MAX } from '../../src/core';
import { request } from './builders';

describe('queue order', () => {
  it.each([
    {
      name: 'larger priority first',
      queue: [request('low').priority(0).at(0).build(), request('high').priority(10).at(5).build()],
      options: {},
      expected: ['high', 'low'],
    },
    {
      name: 'equal priority: earlier submit first',
      queue: [request('late').at(10).build(), request('early').at(5).build()],
      options: {},
      expected: ['early', 'late'],
    },
    {
      name: 'equal priority and submit time: smaller sequence first',
      queue: [request('b').seq(2).build(), request('a').seq(1).build()],
      options: {},
      expected: ['a', 'b'],
    },
    {
      name: 'fair share: the team with the smaller dominant share first among equal priorities',
      queue: [request('rich').team('vision').at(0).build(), request('poor').team('nlp').at(10).build()],
      options: {
        teamShares: new Map([
          ['vision', 0.5],
          ['nlp', 0.1],
        ]),
      },
      expected: ['poor', 'rich'],
    },
    {
      name: 'fair share never overrides priority',
      queue: [request('rich').team('vision').priority(5).build(), request('poor').team('nlp').build()],
      options: {
        teamShares: new Map([
          ['vision', 0.9],
          ['nlp', 0],
        ]),
      },
      expected: ['rich', 'poor'],
    },
    {
      name: 'aging: a long wait lifts a low priority above a fresh higher one',
      queue: [request('fresh').priority(1).at(10_000).build(), request('old').priority(0).at(0).build()],
      options: { now: 10_000, agingIntervalMs: 4_000 },
      expected: ['old', 'fresh'],
    },
  ])('$name', ({ queue, options, expected }) => {
    expect(orderQueue(queue, options).map((r) => r.requestId)).toEqual(expected);
  });
});

describe('priorities', () => {
  it.each([
    { value: undefined, expected: 0 },
    { value: 5, expected: 5 },
    { value: 'high', expected: 100 },
    { value: 'low', expected: -100 },
    { value: 'critical', expected: 1000 },
  ])('parses $value as $expected', ({ value, expected }) => {
    expect(parsePriority(value).priority).toBe(expected);
  });

  it.each([1001, -1001, 1.5, 'urgent', true])('rejects %s with the allowed range and classes', (value) => {
    expect(parsePriority(value).issue?.message).toMatch(
      /must be an integer from -1000 to 1000 or one of "low", "normal", "high", "critical", got/,
    );
  });

  it('aging never lifts past the maximum', () => {
    expect(agedPriority(990, 1_000_000, 1)).toBe(PRIORITY_MAX);
  });

  it('no aging without time waited', () => {
    expect(agedPriority(3, 0, 1)).toBe(3);
  });
});
