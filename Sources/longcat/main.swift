LongCat.main()
