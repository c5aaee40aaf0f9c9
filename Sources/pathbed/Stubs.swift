import ArgumentParser

struct Graph: ParsableCommand {}
struct Generate: ParsableCommand {}
struct Schema: ParsableCommand {}
