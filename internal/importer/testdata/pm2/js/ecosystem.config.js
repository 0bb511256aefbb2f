// PM2 ecosystem of the shop: the API in cluster mode, a Python worker, and
// a cron-driven report job. `pm2 start ecosystem.config.js --env production`
const basePort = 3000;

module.exports = {
  apps: [
    {
      name: 'api',
      script: './dist/server.js',
      instances: 4,
      exec_mode: 'cluster',
      node_args: '--max-old-space-size=512',
      env: {
        NODE_ENV: 'development',
        PORT: basePort + 1,
      },
      env_production: {
        NODE_ENV: 'production',
      },
      max_memory_restart: '300M',
      kill_timeout: 5000,
      wait_ready: true,
      listen_timeout: 10000,
      out_file: '/var/log/shop/api.out.log',
      error_file: '/var/log/shop/api.err.log',
      merge_logs: true,
      log_date_format: 'YYYY-MM-DD HH:mm Z',
    },
    {
      name: 'worker',
      script: 'workers/worker.py',
      interpreter: 'python3',
      interpreter_args: '-u',
      args: ['--queue', 'default', '--concurrency', 2],
      cwd: '.',
      autorestart: true,
      max_restarts: 10,
      min_uptime: '5s',
      restart_delay: 2000,
      watch: ['workers'],
      ignore_watch: ['node_modules', '*.log'],
      env_production: { LOG_LEVEL: 'warning' },
      env_staging: { LOG_LEVEL: 'debug', SENTRY_DSN: 'https://key@sentry.example/1' },
    },
    {
      name: 'nightly-report',
      script: 'dist/report.js',
      cron_restart: '0 3 * * *',
      autorestart: false,
      treekill: true,
      uid: 'reports',
      time: true,
    },
  ],
  deploy: {
    production: {
      user: 'deploy',
      host: ['203.0.113.10'],
      ref: 'origin/main',
      repo: 'git@example.com:shop.git',
      path: '/srv/shop',
    },
  },
};
