package config

const syscallNonblock = 0
