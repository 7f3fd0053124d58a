return Mhc.Cli.CliApp.Run(args);
